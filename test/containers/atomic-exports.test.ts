// Project Atomic's published system containers (projectatomic/atomic-system-containers:
// etcd, flannel, hello-world; their /exports files unchanged, see atomic-exports/README.md)
// installed as `atomic install --system` did, under a real systemd in a test host: hostfs
// files installed with renameFiles and owned by the revision, tmpfiles applied, the
// variables Atomic set, a file atomhost does not own refused, runc's own error shown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { initSysroot, SYSROOT } from '../helpers/sysroot-host.js';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { freePort, startRegistry, type Registry } from './fixtures.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import type { HostStatus } from '../../core/host-api.js';
import { collectHostFiles, UnsafeHostFileError } from '../../containers/hostfs.js';
import { atomicValues, templateUsesPidfile } from '../../containers/atomic-values.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'containers', 'atomic-exports');
const APPLETS = ['sh', 'httpd', 'sleep', 'cat', 'echo', 'ls', 'true', 'false', 'hostname', 'cut', 'mkdir', 'rm', 'printf'];

let th: TestHost;
let scratch: Scratch;
let reg: Registry;
let server: StaticServer;
let env: Record<string, string>;
const port = { client: 0, peer: 0, hello: 0 };

const cli = (...args: string[]) => th.exec('atomhost', ['--sysroot', SYSROOT, ...args], { env });
const live = (...args: string[]) => th.exec('atomhost', ['--sysroot', SYSROOT, ...args], { env: { ...env, ATOMHOST_LIVE: '1' } });

/** An image from a root tree made by `fill` (busybox, files with their modes), pushed with skopeo. */
async function pushTree(name: string, fill: (rootfs: string) => Promise<void>, cmd: string[]): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hostfs-img-'));
  try {
    const layout = join(work, 'layout');
    await execa('umoci', ['init', '--layout', layout]);
    await execa('umoci', ['new', '--image', `${layout}:t`]);
    const bundle = join(work, 'bundle');
    await execa('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'usr/bin', 'var/run']) await mkdir(join(rootfs, d), { recursive: true });
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
    await writeFile(join(rootfs, 'etc', 'resolv.conf'), '');
    await fill(rootfs);
    await execa('umoci', ['repack', '--image', `${layout}:t`, bundle]);
    await execa('umoci', ['config', '--image', `${layout}:t`, ...cmd.map((c) => `--config.cmd=${c}`)]);
    await execa('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:t`, `docker://${reg.host}/${name}`]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function put(rootfs: string, path: string, from: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(join(rootfs, path)), { recursive: true });
  await copyFile(from, join(rootfs, path));
  await chmod(join(rootfs, path), mode);
}

async function exportsOf(rootfs: string, dir: string, files: string[]): Promise<void> {
  for (const f of files) await put(rootfs, `exports/${f}`, join(FIX, dir, f));
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('hostfs-atomic-');
  reg = await startRegistry(join(scratch.dir, 'registry'));
  const repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await buildOsTree(join(scratch.dir, 'tree'), { osname: 'testos', version: '1.0' });
  await commitTree(repo, 'testos/stable', join(scratch.dir, 'tree'), '1.0');
  server = await serveDirectory(repo);
  for (const k of Object.keys(port) as (keyof typeof port)[]) port[k] = await freePort();
  const etcd = (conf: string) => async (r: string) => {
    await put(r, 'usr/bin/etcd', '/usr/bin/etcd', 0o755);
    await put(r, 'lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6', 0o755);
    await put(r, 'lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2', 0o755);
    await put(r, 'usr/bin/etcd-env.sh', join(FIX, 'etcd', 'etcd-env.sh'), 0o755);
    for (const d of ['var/lib/etcd', 'var/run/etcd', 'etc/etcd']) await mkdir(join(r, d), { recursive: true });
    await exportsOf(r, 'etcd', ['config.json.template', 'manifest.json', 'service.template', 'tmpfiles.template']);
    await put(r, 'exports/hostfs/usr/local/bin/etcdctl', '/usr/bin/etcdctl', 0o755);
    await mkdir(join(r, 'exports/hostfs/etc/etcd'), { recursive: true });
    await writeFile(join(r, 'exports/hostfs/etc/etcd/etcd.conf'), conf);
  };
  const conf = await readFile(join(FIX, 'atomhost', 'etcd.conf'), 'utf8');
  await pushTree('etcd:1', etcd(conf), ['/usr/bin/etcd-env.sh', '/usr/bin/etcd']);
  // Version 2 ships another etcd.conf: update and rollback swap the owned file.
  await pushTree('etcd:2', etcd(`${conf}# version 2\n`), ['/usr/bin/etcd-env.sh', '/usr/bin/etcd']);
  await pushTree('hello-world:1', async (r) => {
    await put(r, 'usr/bin/run.sh', join(FIX, 'atomhost', 'hello-run.sh'), 0o755);
    await put(r, 'usr/bin/greet.sh', join(FIX, 'hello-world', 'greet.sh'), 0o755);
    await exportsOf(r, 'hello-world', ['config.json.template', 'manifest.json', 'service.template']);
  }, ['/usr/bin/run.sh']);
  await pushTree('flannel:1', async (r) => {
    await put(r, 'usr/bin/flanneld-run.sh', join(FIX, 'flannel', 'flanneld-run.sh'), 0o755);
    await exportsOf(r, 'flannel', ['config.json.template', 'manifest.json', 'service.template', 'tmpfiles.template']);
    await put(r, 'exports/hostfs/etc/sysconfig/flanneld', join(FIX, 'atomhost', 'flanneld'));
    await mkdir(join(r, 'exports/hostfs/etc/flanneld'), { recursive: true });
  }, ['/usr/bin/flanneld-run.sh']);
  th = await TestHost.boot();
  env = { ATOMHOST_INSECURE_REGISTRIES: reg.host };
  await initSysroot(th, server.url, { env });
});

after(async () => {
  await th?.shutdown();
  await server?.close();
  await reg?.stop();
  await scratch?.dispose();
});

const etcdSets = (name: string, client: number, peer: number) => {
  const c = `http://127.0.0.1:${client}`;
  const p = `http://127.0.0.1:${peer}`;
  return ['--set', `ETCD_NAME=${name}`, '--set', `ETCD_LISTEN_CLIENT_URLS=${c}`, '--set', `ETCD_ADVERTISE_CLIENT_URLS=${c}`, '--set', `ETCD_LISTEN_PEER_URLS=${p}`, '--set', `ETCD_INITIAL_ADVERTISE_PEER_URLS=${p}`, '--set', `ETCD_INITIAL_CLUSTER=${name}=${p}`];
};
const exists = async (p: string) => (await th.exec('test', ['-e', p])).exitCode === 0;
const revisionCount = async () => (await th.sh(`ls ${SYSROOT}/ostree/atomhost/revisions | wc -l`)).stdout;

test("etcd's published exports: etcd1 answers on its port, with ${NAME}ctl and etcd.conf installed from hostfs", async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const r = await live('container', 'install', '--name', 'etcd1', ...etcdSets('etcd1', port.client, port.peer), `${reg.host}/etcd:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await th.exec('systemctl', ['is-active', 'etcd1.service'])).stdout.trim(), 'active', 'the unit is named after the container');
  const health = (await fetch(`http://127.0.0.1:${port.client}/health`).then((x) => x.json())) as { health: string };
  assert.equal(health.health, 'true');
  // renameFiles: /usr/local/bin/etcdctl → /usr/local/bin/${NAME}ctl, /etc/etcd/etcd.conf → $CONF_DIRECTORY/$NAME/etcd.conf
  const ctl = await th.exec('/usr/local/bin/etcd1ctl', [`--endpoints=http://127.0.0.1:${port.client}`, 'put', 'greeting', 'hi'], { env: { ETCDCTL_API: '3' } });
  assert.equal(ctl.exitCode, 0, ctl.stderr);
  assert.equal((await th.exec('/usr/local/bin/etcd1ctl', [`--endpoints=http://127.0.0.1:${port.client}`, 'get', '--print-value-only', 'greeting'], { env: { ETCDCTL_API: '3' } })).stdout.trim(), 'hi');
  assert.equal((await th.exec('cat', ['/etc/etcd1/etcd.conf'])).stdout.trim(), (await readFile(join(FIX, 'atomhost', 'etcd.conf'), 'utf8')).trim());
  assert.equal(await exists('/usr/local/bin/etcdctl'), false, 'installed under its new name only');
  // tmpfiles.template with ${STATE_DIRECTORY} and ${HOST_UID}: the data directory etcd writes to.
  assert.equal(await exists('/var/lib/etcd/etcd1.etcd/etcd1.etcd/member'), true, 'etcd keeps its data in STATE_DIRECTORY/etcd/NAME.etcd');
  const s = JSON.parse((await cli('--json', 'status')).stdout) as HostStatus;
  const files = s.status.deployments[0].revision!.containers.etcd1.hostFiles!;
  assert.deepEqual(Object.keys(files).sort(), ['/etc/etcd1', '/etc/etcd1/etcd.conf', '/usr/local/bin/etcd1ctl'], 'the revision records what the container owns');
  assert.equal((files['/usr/local/bin/etcd1ctl'] as { mode: number }).mode, 0o755);
});

test('a host file atomhost did not install is refused, naming it; nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  const revs = await revisionCount();
  await th.sh('printf "#!/bin/sh\\necho mine\\n" > /usr/local/bin/etcd2ctl; chmod 755 /usr/local/bin/etcd2ctl');
  const r = await live('container', 'install', '--name', 'etcd2', ...etcdSets('etcd2', await freePort(), await freePort()), `${reg.host}/etcd:1`);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /etcd2: will not install \/usr\/local\/bin\/etcd2ctl on the host: it exists and atomhost did not install it/);
  assert.equal((await th.exec('/usr/local/bin/etcd2ctl')).stdout.trim(), 'mine', 'the file is untouched');
  assert.equal(await exists('/etc/etcd2'), false);
  assert.equal(await revisionCount(), revs, 'no revision was recorded');
  await th.exec('rm', ['-f', '/usr/local/bin/etcd2ctl']);
});

test("a container that fails to start shows runc's own error; its host files are removed again", async (t) => {
  if (!requireRoot(t)) return;
  const revs = await revisionCount();
  // etcd's $ADDTL_MOUNTS is a raw JSON fragment (given by root): a mount of a missing source.
  const mount = ', { "type": "bind", "source": "/nonexistent-hostfs-test", "destination": "/mnt", "options": ["rbind", "ro"] }';
  const r = await live('container', 'install', '--name', 'etcd3', ...etcdSets('etcd3', await freePort(), await freePort()), '--set', `ADDTL_MOUNTS=${mount}`, `${reg.host}/etcd:1`);
  assert.notEqual(r.exitCode, 0);
  t.diagnostic(r.stderr);
  assert.match(r.stderr, /etcd3 failed to start/);
  assert.match(r.stderr, /nonexistent-hostfs-test.*no such file or directory/i, `runc's error is shown: ${r.stderr}`);
  assert.equal(await exists('/usr/local/bin/etcd3ctl'), false, 'its hostfs files went with it');
  assert.equal(await exists('/etc/etcd3'), false);
  assert.equal(await revisionCount(), revs);
});

test("hello-world's published exports run with manifest defaults overridden by --set", async (t) => {
  if (!requireRoot(t)) return;
  const r = await live('container', 'install', '--set', `PORT=${port.hello}`, '--set', 'RECEIVER=atomhost', `${reg.host}/hello-world:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  // greet.sh's output (its HTTP head included: ncat sent it raw) is what the port serves.
  assert.match(await fetch(`http://127.0.0.1:${port.hello}/`).then((x) => x.text()), /\r\n\r\nHi atomhost\r\n$/);
});

test('update and rollback swap the owned files; uninstall removes them, keeping one changed by hand', async (t) => {
  if (!requireRoot(t)) return;
  const url = `http://127.0.0.1:${port.client}`;
  // etcd1 runs from etcd:1; retag etcd:1 as what etcd:2 is, so `update` finds a new digest.
  await execa('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/etcd:2`, `docker://${reg.host}/etcd:1`]);
  let r = await live('container', 'update', 'etcd1');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match((await th.exec('cat', ['/etc/etcd1/etcd.conf'])).stdout, /# version 2/, 'an owned file nobody changed follows the image');
  assert.equal((await fetch(`${url}/health`).then((x) => x.json()) as { health: string }).health, 'true');
  r = await live('container', 'rollback', 'etcd1');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.doesNotMatch((await th.exec('cat', ['/etc/etcd1/etcd.conf'])).stdout, /# version 2/, "the rollback puts the previous revision's file back");
  assert.equal((await th.exec('/usr/local/bin/etcd1ctl', [`--endpoints=${url}`, 'get', '--print-value-only', 'greeting'], { env: { ETCDCTL_API: '3' } })).stdout.trim(), 'hi', 'the data survived both');
  await th.sh('echo "# mine" >> /etc/etcd1/etcd.conf');
  r = await live('container', 'uninstall', 'etcd1');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, /\/etc\/etcd1\/etcd\.conf was changed since etcd1 installed it: left in place/);
  assert.equal(await exists('/usr/local/bin/etcd1ctl'), false);
  assert.match((await th.exec('cat', ['/etc/etcd1/etcd.conf'])).stdout, /# mine/, 'the changed file stays (as Atomic kept it)');
  assert.equal(await exists('/etc/systemd/system/etcd1.service'), false);
  assert.equal(await exists('/var/lib/etcd/etcd1.etcd'), true, 'state is kept, as Atomic kept it');
  const s = JSON.parse((await cli('--json', 'status')).stdout) as HostStatus;
  assert.equal(s.status.deployments[0].revision!.containers.etcd1, undefined);
  const parent = s.status.deployments[0].revision!.parent!;
  const prev = (await th.exec('cat', [`${SYSROOT}/ostree/atomhost/revisions/${parent}.yaml`])).stdout;
  assert.match(prev, /\/usr\/local\/bin\/etcd1ctl"?:/, 'the previous revision still records them (a rollback restores that set)');
  await th.exec('rm', ['-rf', '/etc/etcd1']);
});

test("flannel's published exports: hostfs and unit rendered, recorded offline", async (t) => {
  if (!requireRoot(t)) return;
  const r = await cli('container', 'install', '--set', 'AFTER=etcd1.service', `${reg.host}/flannel:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = JSON.parse((await cli('--json', 'status')).stdout) as HostStatus;
  const rev = s.status.deployments[0].revision!;
  assert.deepEqual(Object.keys(rev.containers.flannel.hostFiles ?? {}).sort(), ['/etc/flanneld', '/etc/sysconfig/flanneld']);
  const unit = await th.exec('cat', [`${SYSROOT}/ostree/atomhost/units/${rev.units['flannel.service'].sha256}`]);
  assert.match(unit.stdout, /^After=etcd1\.service$/m);
  assert.match(unit.stdout, /^RequiredBy=docker\.service$/m);
  assert.match(unit.stdout, /^ExecStart=\/\S+runc --root \S+ run --no-new-keyring --bundle \S+ flannel$/m);
  const tmp = await th.exec('cat', [`${SYSROOT}/ostree/atomhost/units/${rev.units['flannel.tmpfiles.conf'].sha256}`]);
  assert.match(tmp.stdout, /^D {4}\/run\/flannel /m);
  assert.equal((await cli('container', 'uninstall', 'flannel')).exitCode, 0);
});

test('hostile hostfs entries and renameFiles are refused, naming the entry (fake: no image, a directory)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hostfs-hostile-'));
  const store = { put: async () => 'x', getBytes: async () => Buffer.alloc(0) };
  const values = atomicValues({ name: 'c', destdir: '/d', image: 'img', imageId: 'sha256:0', user: {}, defaults: {}, runtime: 'runc', directives: () => ({ start: '', stop: '', startPre: '', stopPost: '' }) });
  try {
    await mkdir(join(dir, 'hostfs/etc'), { recursive: true });
    await writeFile(join(dir, 'hostfs/etc/x.conf'), 'x');
    for (const [to, why] of [['/etc/../usr/bin/x', /'\.\.'/], ['/usr/bin/x', /outside \/etc/], ['relative/x', /not an absolute path/], ['/var/lib/atomhost/x', /atomhost's own state/]] as const) {
      await assert.rejects(collectHostFiles(dir, { renameFiles: { '/etc/x.conf': to } }, values, 'img', store), (e: Error) => e instanceof UnsafeHostFileError && /"\/etc\/x\.conf"/.test(e.message) && why.test(e.message));
    }
    await symlink('/etc/shadow', join(dir, 'hostfs/etc/link'));
    await assert.rejects(collectHostFiles(dir, {}, values, 'img', store), /hostfs entry "\/etc\/link" is a symlink/);
    await assert.rejects(
      Promise.resolve().then(() => atomicValues({ name: 'c', destdir: '/d', image: 'i', imageId: 'x', user: { DESTDIR: '/' }, defaults: {}, runtime: 'runc', directives: () => ({ start: '', stop: '', startPre: '', stopPost: '' }) })),
      /--set DESTDIR: atomhost sets \$DESTDIR itself/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("Atomic's variables in Atomic's order, with this host's values", async () => {
  const directives = (pidfile: string) => ({ start: `runc run -d --pid-file ${pidfile} c`, stop: '', startPre: '', stopPost: 'runc delete c' });
  const v = atomicValues({ name: 'etcd1', destdir: '/var/lib/atomhost/containers/etcd1/x', image: 'r/etcd:1', imageId: 'sha256:ab', user: { RUN_DIRECTORY: '/run/alt', ETCD_NAME: 'mine' }, defaults: { CONF_DIRECTORY: '/nope', ETCD_NAME: 'default', ADDTL_MOUNTS: '' }, runtime: '/usr/sbin/runc', directives });
  assert.equal(v.PIDFILE, '/run/alt/container-etcd1.pid', 'PIDFILE follows a --set RUN_DIRECTORY');
  assert.equal(v.EXEC_START, 'runc run -d --pid-file /run/alt/container-etcd1.pid c');
  assert.equal(v.CONF_DIRECTORY, '/etc', "a manifest default does not override Atomic's directories (only --set does)");
  assert.equal(v.STATE_DIRECTORY, '/var/lib');
  assert.equal(v.ETCD_NAME, 'mine', '--set wins over defaultValues');
  assert.equal(v.ADDTL_MOUNTS, '');
  assert.equal(v.HOST_UID, String(process.getuid?.()));
  assert.equal(v.HOST_GID, String(process.getgid?.()));
  assert.equal(v.DESTDIR, '/var/lib/atomhost/containers/etcd1/x');
  assert.equal(v.IMAGE_ID, 'sha256:ab');
  assert.equal(v.RUNTIME, '/usr/sbin/runc');
  assert.match(v.UUID, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const caps = JSON.parse(`[${v.ALL_PROCESS_CAPABILITIES}]`) as string[];
  assert.equal(caps.length, Number((await readFile('/proc/sys/kernel/cap_last_cap', 'utf8')).trim()) + 1, 'every capability this kernel knows');
  assert.equal(caps[0], 'CAP_CHOWN');
  assert.equal(templateUsesPidfile('ExecStart=$EXEC_START\nExecStopPost=$EXEC_STOPPOST\nPIDFile=${PIDFILE}\n'), true);
  assert.equal(templateUsesPidfile('ExecStart=$EXEC_START\nExecStop=$EXEC_STOP\n'), false, "etcd's template runs runc in the foreground");
});
