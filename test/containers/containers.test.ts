// System containers end to end on real parts: Debian's docker-registry on 127.0.0.1,
// images built with umoci and pushed with skopeo, the OSTree store of a real sysroot,
// real runc. The CLI runs with --sysroot (revisions recorded, nothing started); the test
// starts the bundle with runc itself to see it serve.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture, OS } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { blobPath, buildAndPush, freePort, pushManifest, pushRawImage, startRegistry, type Registry } from './fixtures.js';
import type { HostStatus } from '../../core/host-api.js';
import type { Revision } from '../../core/revision.js';

let f: OsFixture;
let reg: Registry;
let webPort = 0;
let v1 = '';

const page = (port: number) => fetch(`http://127.0.0.1:${port}/index.html`).then((r) => r.text(), (e: Error) => `error: ${e.message}`);

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  reg = await startRegistry(join(f.scratch.dir, 'registry'));
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  webPort = await freePort();
  v1 = await buildAndPush(reg.host, 'web:stable', {
    layers: [{ busybox: true }, { files: { 'www/index.html': 'v1\n', 'etc/obsolete.conf': 'old' } }, { remove: ['etc/obsolete.conf'] }],
    cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${webPort}`, '-h', '/www'],
  });
});
after(async () => {
  await reg?.stop();
  await f?.dispose();
});

async function revisionCount(): Promise<number> {
  return Object.keys(await f.revisionFiles()).length;
}

async function runBundle(dir: string, id: string): Promise<() => Promise<void>> {
  const root = join(f.scratch.dir, 'runc');
  const r = await execa('runc', ['--root', root, 'run', '--detach', '--bundle', dir, id], { reject: false, stdio: 'ignore' });
  assert.equal(r.exitCode, 0, `runc run ${id}`);
  await new Promise((res) => setTimeout(res, 300));
  return async () => {
    await execa('runc', ['--root', root, 'delete', '--force', id], { reject: false });
  };
}

test('install: layers pulled into the OSTree store, whiteouts applied, a new revision and deployment', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot and runs runc')) return;
  const revsBefore = await revisionCount();
  const r = await f.cli('container', 'install', `${reg.host}/web:stable`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /install web: web .*web:stable sha256:[0-9a-f]{12}/);
  const s = await f.cliJson<HostStatus>('status');
  const c = s.status.deployments[0].revision!.containers.web;
  assert.equal(c.digest, v1);
  assert.equal(await revisionCount(), revsBefore + 1);
  assert.equal(s.status.deployments.length, 2, 'a container change is a deployment of its own');
  assert.equal(s.status.deployments[0].checksum, s.status.deployments[1].checksum, 'of the same OS commit');
  assert.ok(!(await stat(join(c.checkout, 'rootfs/etc/obsolete.conf')).catch(() => null)), 'the whiteout removed the file');
  assert.equal(await readFile(join(c.checkout, 'rootfs/www/index.html'), 'utf8'), 'v1\n');
  // Layers are OSTree commits: fsck-able, refs by digest.
  const refs = (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost'])).stdout;
  assert.equal(refs.split('\n').filter((l) => l.startsWith('atomhost/layer/')).length, 3);
  assert.ok(refs.includes(`atomhost/image/${v1.slice(7)}`));
  await execa('ostree', ['fsck', `--repo=${f.sysroot}/ostree/repo`]);
  assert.match((await f.cli('status')).stdout, /Container: web .*web:stable sha256:/);
  const list = JSON.parse((await f.cli('--json', 'container', 'list')).stdout) as { name: string; digest: string }[];
  assert.deepEqual(list.map((x) => [x.name, x.digest]), [['web', v1]]);
});

test('the checked-out bundle runs under real runc and serves from the image', async (t) => {
  if (!requireRoot(t)) return;
  const s = await f.cliJson<HostStatus>('status');
  const c = s.status.deployments[0].revision!.containers.web;
  const config = JSON.parse(await readFile(join(c.checkout, 'config.json'), 'utf8')) as { root: { readonly: boolean }; process: { terminal: boolean } };
  assert.equal(config.root.readonly, true, 'the hardlinked root is read-only');
  assert.equal(config.process.terminal, false);
  const stop = await runBundle(c.checkout, 'atomhost-test-web');
  try {
    assert.equal(await page(webPort), 'v1\n');
  } finally {
    await stop();
  }
  const unit = (await f.revisionFiles()) && (s.status.deployments[0].revision!.units['web.service']);
  const text = await readFile(join(f.sysroot, 'ostree/atomhost/units', unit.sha256), 'utf8');
  assert.match(text, new RegExp(`ExecStart=/usr/sbin/runc --root /run/atomhost/runc run --no-new-keyring --bundle ${c.checkout} web`));
});

test('update, container rollback, uninstall: each a revision; host rollback brings the container back', async (t) => {
  if (!requireRoot(t)) return;
  const v2 = await buildAndPush(reg.host, 'web:stable', {
    layers: [{ busybox: true }, { files: { 'www/index.html': 'v2\n' } }],
    cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${webPort}`, '-h', '/www'],
  });
  assert.notEqual(v2, v1);
  let r = await f.cli('container', 'update', 'web');
  assert.equal(r.exitCode, 0, r.stderr);
  let s = await f.cliJson<HostStatus>('status');
  const c2 = s.status.deployments[0].revision!.containers.web;
  assert.equal(c2.digest, v2);
  const stop = await runBundle(c2.checkout, 'atomhost-test-web2');
  try {
    assert.equal(await page(webPort), 'v2\n');
  } finally {
    await stop();
  }
  r = await f.cli('container', 'update', 'web');
  assert.match(r.stdout, /up to date/);
  r = await f.cli('container', 'rollback', 'web');
  assert.equal(r.exitCode, 0, r.stderr);
  s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].revision!.containers.web.digest, v1);
  r = await f.cli('container', 'uninstall', 'web');
  assert.equal(r.exitCode, 0, r.stderr);
  s = await f.cliJson<HostStatus>('status');
  assert.deepEqual(s.status.deployments[0].revision!.containers, {});
  assert.deepEqual(s.status.deployments[0].revision!.units, {});
  // The whole host rolls back: the previous revision, container and all, is the default.
  r = await f.cli('rollback');
  assert.equal(r.exitCode, 0, r.stderr);
  s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].revision!.containers.web.digest, v1);
  const revs = await f.cliJson<Revision[]>('revisions');
  const d = await f.cliJson<{ containers: { name: string; from: string | null; to: string | null }[] }>('diff', revs.find((x) => x.containers.web?.digest === v2)!.id, s.spec.revision!);
  assert.deepEqual(d.containers, [{ name: 'web', image: `${reg.host}/web:stable`, from: v2, to: v1 }]);
});

test('gc removes images and layers no boot entry references', async (t) => {
  if (!requireRoot(t)) return;
  const layers = async () => (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost/layer'])).stdout.split('\n').filter(Boolean).length;
  assert.equal((await f.cli('container', 'uninstall', 'web')).exitCode, 0);
  const before = await layers();
  assert.equal((await f.cli('cleanup', '--rollback')).exitCode, 0);
  const r = await f.cli('container', 'gc');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Removed [1-9]\d* images, [1-9]\d* layers/);
  assert.ok((await layers()) < before);
  assert.equal((await readdir(join(f.sysroot, 'ostree/deploy', OS, 'var/lib/atomhost/containers/web')).catch(() => [])).length, 0);
});

test('an image in the Project Atomic system-container format installs as `atomic install --system` did', async (t) => {
  if (!requireRoot(t)) return;
  const port = await freePort();
  const configTemplate = JSON.stringify({
    ociVersion: '1.0.2',
    process: { terminal: true, user: { uid: 0, gid: 0 }, args: ['/bin/httpd', '-f', '-p', '127.0.0.1:$PORT', '-h', '/www'], env: ['PATH=/bin', 'NAME=$NAME'], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    hostname: '$NAME',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/run', type: 'tmpfs', source: 'tmpfs' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }] },
  });
  await buildAndPush(reg.host, 'etcd-like:1', {
    layers: [
      { busybox: true },
      {
        files: {
          'www/index.html': 'atomic\n',
          'exports/config.json.template': configTemplate,
          'exports/manifest.json': JSON.stringify({ version: '1.0', defaultValues: { PORT: '1', ETCD_DATA: '/var/lib/etcd' } }),
          'exports/service.template': '[Unit]\nDescription=$NAME from an atomic image\n[Service]\nExecStart=$EXEC_START\nExecStop=$EXEC_STOP\nEnvironment=DATA=${ETCD_DATA}\n[Install]\nWantedBy=multi-user.target\n',
          'exports/tmpfiles.template': 'd ${STATE_DIRECTORY}/$NAME 0700 - - -\n',
        },
      },
    ],
    cmd: ['/bin/sh'],
  });
  const r = await f.cli('container', 'install', '--name', 'etcd', '--set', `PORT=${port}`, `${reg.host}/etcd-like:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = await f.cliJson<HostStatus>('status');
  const rev = s.status.deployments[0].revision!;
  const c = rev.containers.etcd;
  const unit = await readFile(join(f.sysroot, 'ostree/atomhost/units', rev.units['etcd.service'].sha256), 'utf8');
  assert.match(unit, /Description=etcd from an atomic image/);
  assert.match(unit, new RegExp(`ExecStart=/usr/sbin/runc --root /run/atomhost/runc run --no-new-keyring --bundle ${c.checkout} etcd`));
  assert.match(unit, /Environment=DATA=\/var\/lib\/etcd/, 'manifest.json defaultValues fill the template');
  const tmpfiles = await readFile(join(f.sysroot, 'ostree/atomhost/units', rev.units['etcd.tmpfiles.conf'].sha256), 'utf8');
  assert.equal(tmpfiles, 'd /var/lib/etcd 0700 - - -\n');
  const config = JSON.parse(await readFile(join(c.checkout, 'config.json'), 'utf8')) as { process: { args: string[]; terminal: boolean } };
  assert.deepEqual(config.process.args.slice(-3), ['-p', `127.0.0.1:${port}`, '-h', '/www'].slice(-3));
  assert.equal(config.process.terminal, false, 'terminal is forced off for a unit');
  const stop = await runBundle(c.checkout, 'atomhost-test-etcd');
  try {
    assert.equal(await page(port), 'atomic\n');
  } finally {
    await stop();
  }
  const bad = await f.cli('container', 'install', '--name', 'etcd2', `${reg.host}/etcd-like:1`, '--set', 'X=1');
  assert.equal(bad.exitCode, 0, 'defaults cover every variable');
});

test('a multi-arch index installs the amd64 image', async (t) => {
  if (!requireRoot(t)) return;
  const amd = await buildAndPush(reg.host, 'multi:amd64', { layers: [{ busybox: true, files: { arch: 'amd64' } }], cmd: ['/bin/true'] });
  const arm = await buildAndPush(reg.host, 'multi:arm64', { layers: [{ files: { arch: 'arm64' } }], cmd: ['/bin/true'] });
  const size = async (d: string) => (await stat(blobPath(reg.storage, d))).size;
  await pushManifest(reg.host, 'multi', 'latest', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm, size: await size(arm), platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd, size: await size(amd), platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }, 'application/vnd.oci.image.index.v1+json');
  const r = await f.cli('--json', 'container', 'install', `${reg.host}/multi:latest`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { container: { digest: string } }).container.digest, amd);
});

test('bad images and faults: one clear error, nothing stored, revisions and deployments unchanged', async (t) => {
  if (!requireRoot(t)) return;
  const layerRefs = async () => (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost/layer'])).stdout;
  const cases: [string, () => Promise<void>, string[], RegExp][] = [
    ['unknown image', async () => {}, ['container', 'install', `${reg.host}/no-such-image:1`], /^error: image .*no-such-image:1 was not found in registry/],
    ['unknown digest', async () => {}, ['container', 'install', `${reg.host}/web@sha256:${'0'.repeat(64)}`], /^error: image .*web@sha256:0+ was not found/],
    ['unsupported reference', async () => {}, ['container', 'install', 'UPPER/Case'], /^error: invalid image reference "UPPER\/Case"/],
    ['path traversal', () => pushRawImage(reg.host, 'evil', 'dotdot', [{ name: 'ok' }, { name: '../../etc/evil' }]).then(() => {}), ['container', 'install', `${reg.host}/evil:dotdot`], /^error: layer sha256:[0-9a-f]+ of .*evil:dotdot: entry "\.\.\/\.\.\/etc\/evil" points outside the image root; nothing was stored/],
    ['absolute path', () => pushRawImage(reg.host, 'evil', 'abs', [{ name: '/etc/evil' }]).then(() => {}), ['container', 'install', `${reg.host}/evil:abs`], /entry "\/etc\/evil" points outside the image root/],
    ['symlink escape', () => pushRawImage(reg.host, 'evil', 'symlink', [{ name: 'up', type: 'symlink', linkname: '../../../..' }]).then(() => {}), ['container', 'install', `${reg.host}/evil:symlink`], /entry "up" is a symlink to \.\.\/\.\.\/\.\.\/\.\., outside the image root/],
    ['write through a symlink', () => pushRawImage(reg.host, 'evil', 'through', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/passwd', content: 'owned' }]).then(() => {}), ['container', 'install', `${reg.host}/evil:through`], /entry "etc\/passwd" would be written through the symlink etc/],
    ['hardlink escape', () => pushRawImage(reg.host, 'evil', 'hardlink', [{ name: 'x', type: 'link', linkname: '../../etc/shadow' }]).then(() => {}), ['container', 'install', `${reg.host}/evil:hardlink`], /entry "x" is a hardlink to \.\.\/\.\.\/etc\/shadow, outside the image root/],
  ];
  for (const [what, setup, args, expect] of cases) {
    await setup();
    const before = await f.snapshot();
    const refs = await layerRefs();
    const r = await f.cli(...args);
    assert.notEqual(r.exitCode, 0, what);
    assert.match(r.stderr.trim(), expect, what);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
    assert.deepEqual(await f.snapshot(), before, `${what}: the host is unchanged`);
    assert.equal(await layerRefs(), refs, `${what}: nothing stored`);
  }
  assert.ok(!(await stat('/etc/evil').catch(() => null)), 'nothing escaped onto the machine');

  // A corrupt blob in the registry's storage: the digest check names the layer.
  const d = await buildAndPush(reg.host, 'corrupt:1', { layers: [{ files: { 'data/file': 'x'.repeat(10000) } }], cmd: ['/bin/true'] });
  const manifest = JSON.parse((await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/corrupt:1`])).stdout) as { layers: { digest: string }[] };
  const layer = manifest.layers[0].digest;
  const data = await readFile(blobPath(reg.storage, layer));
  data[data.length - 40] ^= 0xff;
  await writeFile(blobPath(reg.storage, layer), data);
  let before = await f.snapshot();
  let r = await f.cli('container', 'install', `${reg.host}/corrupt:1`);
  assert.match(r.stderr, new RegExp(`^error: layer ${layer} of .*corrupt: digest mismatch`));
  assert.deepEqual(await f.snapshot(), before);
  void d;

  // The registry is down.
  await reg.stop();
  before = await f.snapshot();
  r = await f.cli('container', 'install', `${reg.host}/web:stable`);
  assert.match(r.stderr, new RegExp(`^error: registry ${reg.host.replace(/\./g, '\\.')} is unreachable`));
  assert.deepEqual(await f.snapshot(), before);
  reg = await startRegistry(join(f.scratch.dir, 'registry'));
});
