// The Debian package (`npm run package`, scripts/package.sh): its metadata and file list,
// lintian's verdict, and a real install in a test host that has no atomhost of the
// checkout: `dpkg -i`, then the CLI reaching /usr/bin/atomhostd by D-Bus activation
// (systemd's unit from the package) on a tmpfs sysroot, then `dpkg -r`. And the variant
// that carries its runtime (--with-node, what the composed OS installs): its version,
// Depends without nodejs, its file list, the carried node, lintian.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, execaSync } from 'execa';
import { requireCommand, requireRoot } from '../helpers/capability.js';
import { initSysroot, REF, SYSROOT } from '../helpers/sysroot-host.js';
import { TestHost } from '../../sandbox/testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import type { HostStatus } from '../../core/host-api.js';
import { MESSAGE_IDS } from '../../agent/journal.js';

const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const VERSION = (JSON.parse(readFileSync(join(PROJECT, 'package.json'), 'utf8')) as { version: string }).version;

/** The last commit's time: the package's SOURCE_DATE_EPOCH (scripts/package.sh). */
const EPOCH = execaSync('git', ['log', '-1', '--format=%ct'], { cwd: PROJECT }).stdout.trim();

/** A key over everything the package is made of: a rebuild only when one of them changed. */
function inputsKey(): string {
  const h = createHash('sha256').update(EPOCH);
  const add = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) add(join(p, e));
    else h.update(p).update(readFileSync(p));
  };
  for (const p of ['packaging', 'units', 'scripts/package.sh', 'scripts/build.sh', 'scripts/bundle.mjs', 'package.json', 'package-lock.json', 'ostree-bridge/native/build/Release/ostree_bridge.node', 'dist/bin']) add(join(PROJECT, p));
  return h.digest('hex').slice(0, 16);
}

let deb: string;
let files: string[];

/** The file list of a package, as absolute paths (symlinks without their target). */
async function contents(p: string): Promise<string[]> {
  return (await execa('dpkg-deb', ['--contents', p])).stdout.split('\n').map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\.\//, '/').replace(/ -> .*/, ''));
}

/** Builds (args: scripts/package.sh's options) into `out` unless this key already made it. */
async function build(out: string, ...args: string[]): Promise<void> {
  if (existsSync(out)) return;
  const r = await execa('nice', ['-n', '19', 'bash', join(PROJECT, 'scripts/package.sh'), ...args, out], { cwd: PROJECT, reject: false });
  assert.equal(r.exitCode, 0, `scripts/package.sh ${args.join(' ')} failed:\n${r.stderr}`);
}

/** lintian's errors for a package (its warnings printed). */
async function lintianErrors(p: string): Promise<string[]> {
  const r = await execa('nice', ['-n', '19', 'lintian', '--allow-root', p], { reject: false });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l));
  for (const w of lines.filter((l) => l.startsWith('W: '))) console.log(`# lintian ${w}`);
  assert.ok(r.exitCode === 0 || lines.length > 0, `lintian failed to run: ${r.stderr}`);
  return lines.filter((l) => l.startsWith('E: '));
}

before(async () => {
  // Under the checkout (git-ignored dist-pkg/): the test host sees the checkout at the same path.
  const key = `test-${inputsKey()}`;
  deb = join(PROJECT, 'dist-pkg', key, `atomhost_${VERSION}_amd64.deb`);
  // Packages of older inputs are never used again.
  for (const e of existsSync(dirname(dirname(deb))) ? readdirSync(dirname(dirname(deb))) : []) {
    if (e.startsWith('test-') && e !== key) await rm(join(dirname(dirname(deb)), e), { recursive: true, force: true });
  }
  await build(deb);
  files = await contents(deb);
});

test('the package: name, version from package.json, amd64, Depends on nodejs >= 20 and the addons\' libraries', async () => {
  const info = (await execa('dpkg-deb', ['--field', deb, 'Package', 'Version', 'Architecture', 'Depends'])).stdout;
  assert.match(info, /^Package: atomhost$/m);
  assert.match(info, new RegExp(`^Version: ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
  assert.match(info, /^Architecture: amd64$/m);
  const depends = info.match(/^Depends: (.*)$/m)?.[1] ?? '';
  for (const d of [/nodejs \(>= 20\)/, /libostree-1-1( \(>= [^)]+\))?/, /libsystemd0/, /libc6/, /libglib2\.0-0/]) assert.match(depends, d, depends);
  const scripts = (await execa('dpkg-deb', ['--info', deb])).stdout;
  for (const s of ['postinst', 'prerm', 'postrm', 'md5sums']) assert.match(scripts, new RegExp(`\\b${s}\\b`));
});

test('the file list: code under /usr/lib/atomhost, wrappers, units, D-Bus/polkit files, docs; no tests, benches or maps', async () => {
  for (const p of [
    '/usr/bin/atomhost', '/usr/bin/atomhostd',
    '/usr/lib/atomhost/package.json', '/usr/lib/atomhost/dist/bin/atomhost.js', '/usr/lib/atomhost/dist/bin/atomhostd.js', '/usr/lib/atomhost/dist/bin/package.json',
    '/usr/lib/atomhost/ostree-bridge/native/build/Release/ostree_bridge.node',
    '/usr/lib/atomhost/node_modules/systemd-journald/build/Release/journal_send.node',
    '/lib/systemd/system/atomhostd.service', '/lib/systemd/system/atomhost.slice', '/lib/systemd/system/atomhost-reconcile.service', '/lib/systemd/system/atomhost-health.service', '/lib/systemd/system/atomhost-updates.path',
    '/usr/share/dbus-1/system.d/io.atomhost.Agent1.conf', '/usr/share/dbus-1/system-services/io.atomhost.Agent1.service',
    '/usr/share/polkit-1/actions/io.atomhost.policy',
    '/usr/share/doc/atomhost/copyright', '/usr/share/doc/atomhost/changelog.gz',
  ]) assert.ok(files.includes(p), `${p} is in the package`);
  const code = files.filter((f) => f.startsWith('/usr/lib/atomhost/dist/'));
  assert.deepEqual(code.filter((f) => /\/dist\/(test|bench|sandbox)\//.test(f) || f.endsWith('.map')), [], 'no test, bench, sandbox or source-map files');
  assert.deepEqual(files.filter((f) => /node_modules\/(typescript|@types|node-gyp|esbuild)\//.test(f)), [], 'no dev dependencies');
  // The bundles carry the npm modules; only systemd-journald (and its declared nan) is left outside.
  assert.deepEqual([...new Set(files.map((f) => /^\/usr\/lib\/atomhost\/node_modules\/([^/]+)\//.exec(f)?.[1]).filter(Boolean))].sort(), ['nan', 'systemd-journald']);
  assert.deepEqual(code.filter((f) => f !== '/usr/lib/atomhost/dist/' && !f.startsWith('/usr/lib/atomhost/dist/bin/')), [], 'only the bundles under dist/');
  assert.deepEqual(files.filter((f) => f.startsWith('/usr/local') || f.startsWith('/etc/')), [], 'nothing in /usr/local or /etc');
  // The packaged units are units/ with /usr/bin for /usr/local/bin.
  const unit = (await execa('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./lib/systemd/system/atomhostd.service ./usr/share/dbus-1/system-services/io.atomhost.Agent1.service`, 'sh', deb], { stripFinalNewline: false })).stdout;
  assert.match(unit, /^ExecStart=\/usr\/bin\/atomhostd$/m);
  assert.match(unit, /^Exec=\/usr\/bin\/atomhostd$/m);
  assert.doesNotMatch(unit, /\/usr\/local/);
  assert.equal(unit.replaceAll('/usr/bin/', '/usr/local/bin/'), readFileSync(join(PROJECT, 'units/atomhostd.service'), 'utf8') + readFileSync(join(PROJECT, 'units/io.atomhost.Agent1.dbus-service'), 'utf8'));
});

test('lintian: no errors (warnings are printed)', async (t) => {
  if (!(await requireCommand(t, 'lintian'))) return;
  assert.deepEqual(await lintianErrors(deb), [], 'lintian errors');
});

describe('--with-node: the package that carries its runtime (the composed OS\'s)', () => {
  let nodeDeb: string;
  let nodeFiles: string[];
  const nodeVersion = `${VERSION}+node${process.versions.node}`;
  before(async () => {
    nodeDeb = join(dirname(deb), `atomhost_${nodeVersion}_amd64.deb`);
    await build(nodeDeb, '--with-node');
    nodeFiles = await contents(nodeDeb);
  });

  test('version VERSION+nodeNODE, Depends: node\'s and the addons\' libraries, no nodejs', async () => {
    const info = (await execa('dpkg-deb', ['--field', nodeDeb, 'Package', 'Version', 'Depends'])).stdout;
    assert.match(info, /^Package: atomhost$/m);
    assert.equal(/^Version: (.*)$/m.exec(info)?.[1], nodeVersion);
    const depends = /^Depends: (.*)$/m.exec(info)?.[1] ?? '';
    assert.doesNotMatch(depends, /nodejs/);
    // libstdc++6 and libgcc-s1 are node's own (the addons alone need neither libgcc-s1).
    for (const d of [/libostree-1-1/, /libsystemd0/, /libglib2\.0-0/, /libc6 \(>= [^)]+\)/, /libstdc\+\+6/, /libgcc-s1/]) assert.match(depends, d, depends);
  });

  test('the file list: the standard one plus /usr/lib/atomhost/node and its lintian overrides', () => {
    assert.deepEqual(nodeFiles.filter((f) => !files.includes(f)).sort(), ['/usr/lib/atomhost/node', '/usr/share/lintian/', '/usr/share/lintian/overrides/', '/usr/share/lintian/overrides/atomhost']);
    assert.deepEqual(files.filter((f) => !nodeFiles.includes(f)), []);
  });

  test('the wrappers and the bundles run the carried node, which is this Node.js (stripped)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'atomhost-debpkg-node-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await execa('dpkg-deb', ['--extract', nodeDeb, dir]);
    assert.equal(readFileSync(join(dir, 'usr/bin/atomhost'), 'utf8'), '#!/bin/sh\nexec /usr/lib/atomhost/node /usr/lib/atomhost/dist/bin/atomhost.js "$@"\n');
    assert.match(readFileSync(join(dir, 'usr/bin/atomhostd'), 'utf8'), /^exec \/usr\/lib\/atomhost\/node --max-semi-space-size=1 /m);
    assert.doesNotMatch(readFileSync(join(dir, 'usr/lib/atomhost/dist/bin/atomhost.js'), 'utf8').split('\n')[0], /^#!/, 'no shebang naming a node the package does not depend on');
    const node = join(dir, 'usr/lib/atomhost/node');
    assert.equal((await execa(node, ['-p', 'process.version'])).stdout, process.version);
    assert.doesNotMatch((await execa('file', [node])).stdout, /not stripped/);
    // The CLI runs on it from the unpacked tree.
    assert.match((await execa(node, [join(dir, 'usr/lib/atomhost/dist/bin/atomhost.js'), '--version'])).stdout, new RegExp(VERSION.replaceAll('.', '\\.')));
  });

  test('lintian: no errors (two overrides, each with its reason)', async (t) => {
    if (!(await requireCommand(t, 'lintian'))) return;
    assert.deepEqual(await lintianErrors(nodeDeb), [], 'lintian errors');
  });
});

test('reproducible: a second build from the same inputs is the same file, byte for byte', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-debpkg-repro-'));
  try {
    const again = join(dir, 'atomhost.deb');
    const r = await execa('nice', ['-n', '19', 'bash', join(PROJECT, 'scripts/package.sh'), again], { cwd: PROJECT, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    assert.equal(sha(again), sha(deb));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

let th: TestHost | undefined;
let scratch: Scratch | undefined;
let server: StaticServer | undefined;
after(async () => {
  await th?.shutdown();
  await server?.close();
  await scratch?.dispose();
});

test('in a test host without the checkout: dpkg -i, status through D-Bus-activated /usr/bin/atomhostd, dpkg -r', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  scratch = await makeScratch('atomhost-debpkg-');
  const repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await buildOsTree(join(scratch.dir, 'tree'), { osname: 'testos', version: '1.0', files: {} });
  await commitTree(repo, REF, join(scratch.dir, 'tree'), '1.0');
  server = await serveDirectory(repo);
  th = await TestHost.boot({ project: false });
  const sh = async (script: string) => {
    const r = await th!.sh(script);
    assert.equal(r.exitCode, 0, `${script}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  // The machine's own links (npm run setup) show through the overlay: take them away. So
  // does its Docker-image policy-rc.d ("exit 101": no service actions in an image build),
  // which would make deb-systemd-invoke in the maintainer scripts do nothing; a real host
  // has none.
  await sh('rm -f /usr/local/bin/atomhost /usr/local/bin/atomhostd /usr/sbin/policy-rc.d');
  assert.notEqual((await th.sh('command -v atomhost')).exitCode, 0, 'no atomhost before the install');
  assert.match(await sh('systemctl show -p LoadState atomhostd.service'), /LoadState=not-found/);

  const install = await th.exec('dpkg', ['-i', deb]);
  assert.equal(install.exitCode, 0, `dpkg -i: ${install.stdout}\n${install.stderr}`);
  assert.equal((await sh('command -v atomhost')).trim(), '/usr/bin/atomhost');
  assert.match(await sh('dpkg-query -W -f=\'${Status} ${Version}\' atomhost'), new RegExp(`install ok installed ${VERSION}`));
  const shown = await sh('systemctl show -p FragmentPath -p ExecStart atomhostd.service');
  assert.match(shown, /^FragmentPath=\/lib\/systemd\/system\/atomhostd\.service$/m);
  assert.match(shown, /^ExecStart=\{ path=\/usr\/bin\/atomhostd /m);
  assert.equal((await th.sh('systemctl is-enabled atomhostd.service')).stdout.trim(), 'disabled', 'nothing enabled by the package');

  await initSysroot(th, server.url, { serveByDaemon: true });
  assert.equal((await th.sh('systemctl is-active atomhostd.service')).stdout.trim(), 'inactive', 'not started before a client asks');
  const st = await th.exec('atomhost', ['status', '--json']);
  assert.equal(st.exitCode, 0, st.stderr);
  const s = JSON.parse(st.stdout) as HostStatus;
  assert.equal(s.metadata.sysroot, SYSROOT);
  assert.equal((await sh('systemctl is-active atomhostd.service')).trim(), 'active');
  const pid = (await sh('systemctl show -p MainPID --value atomhostd.service')).trim();
  assert.match(await sh(`tr '\\0' ' ' < /proc/${pid}/cmdline`), /^\/usr\/bin\/node --max-semi-space-size=1 \/usr\/lib\/atomhost\/dist\/bin\/atomhostd\.js/);
  // The journald binding, left outside the bundle, is found: a structured entry, not stderr.
  assert.match(await sh(`journalctl -o json --no-pager SYSLOG_IDENTIFIER=atomhostd MESSAGE_ID=${MESSAGE_IDS.started}`), /atomhostd serving/);
  const nobody = await th.exec('atomhost', ['status'], { user: '65534' });
  assert.equal(nobody.exitCode, 0, nobody.stderr);
  assert.match(nobody.stdout, /0: testos 1\.0/);

  const remove = await th.exec('dpkg', ['-r', 'atomhost']);
  assert.equal(remove.exitCode, 0, `dpkg -r: ${remove.stdout}\n${remove.stderr}`);
  const left = await th.sh('ls -d /usr/bin/atomhost /usr/bin/atomhostd /usr/lib/atomhost /lib/systemd/system/atomhostd.service /usr/share/dbus-1/system-services/io.atomhost.Agent1.service /usr/share/polkit-1/actions/io.atomhost.policy 2>/dev/null');
  assert.equal(left.stdout.trim(), '', 'the package\'s files are gone');
  assert.equal((await th.sh('systemctl is-active atomhostd.service')).stdout.trim(), 'inactive', 'prerm stopped the agent');
  assert.match(await sh('systemctl show -p LoadState atomhostd.service'), /LoadState=not-found/, 'postrm reloaded systemd');
});
