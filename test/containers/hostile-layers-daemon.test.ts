// Hostile images through atomhostd in a test host (real systemd as PID 1, the real system
// bus, Debian's docker-registry on 127.0.0.1): `atomhost container install` without
// --sysroot asks the daemon, which pulls, checks and stores the layers. Each escape is
// refused with the image, layer and entry named; a sentinel tree the images aim at (seen
// from the machine, outside the test host) is unchanged, nothing is stored, the daemon stays up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import type { Registry } from './fixtures.js';
import { layerTar, pushLayers } from './hostile-images.js';
import { prepareDiskHost, type DiskHost } from '../helpers/disk-host.js';
import type { Revision } from '../../core/revision.js';

const INSIDE = '/var/lib/atomhost-test';
const SYSROOT = `${INSIDE}/sysroot`;
/** The sentinel tree, as the daemon in the test host sees it (and the images aim at it). */
const SENTINEL = `${INSIDE}/sentinel`;
/** The same place from any depth below /: more `..` than any checkout path has. */
const CLIMB = `${'../'.repeat(16)}${SENTINEL.slice(1)}`;
let th: TestHost;
let fx: DiskHost;
let reg: Registry;
let disk: string;

const atomhost = (...args: string[]) => th.exec('atomhost', args);

/** Every entry of the sentinel tree on the machine: type, mode, owner, size, content hash, link target. */
async function snapshot(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = join(dir, rel, name);
    const st = await lstat(p);
    const what = st.isSymbolicLink() ? `-> ${await readlink(p)}` : st.isFile() ? createHash('sha256').update(await readFile(p)).digest('hex') : st.isDirectory() ? 'dir' : 'other';
    out.push(`${join(rel, name)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${what}`);
    if (st.isDirectory()) out.push(...(await snapshot(dir, join(rel, name))));
  }
  return out;
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  fx = await prepareDiskHost('atomhost-hostile-daemon-', { inside: INSIDE });
  reg = fx.reg;
  disk = fx.disk;
  // What an escape would write into, empty or replace: files, a directory, a symlink.
  await mkdir(join(disk, 'sentinel', 'dir'), { recursive: true });
  await writeFile(join(disk, 'sentinel', 'secret'), 'sentinel secret\n', { mode: 0o600 });
  await writeFile(join(disk, 'sentinel', 'dir', 'kept'), 'kept\n');
  await writeFile(join(disk, 'sentinel', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  th = await fx.boot({ agentEnv: { ATOMHOST_INSECURE_REGISTRIES: reg.host } });
});

after(async () => {
  await fx?.dispose(th, { journalLines: 30 });
});

test('hostile images installed through atomhostd are refused naming image, layer and entry; the sentinel tree and the store are unchanged', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const cases: [string, Buffer[], RegExp][] = [
    // A pax extended header renames the entry after the ustar name was read.
    ['pax path', [await layerTar([{ name: 'innocent', pax: { path: `${CLIMB}/evil` } }])], /entry ".*sentinel\/evil" points outside the image root/],
    ['pax linkpath', [await layerTar([{ name: 'ok' }, { name: 'h', type: 'link', linkname: 'ok', pax: { linkpath: `${CLIMB}/secret` } }])], /entry "h" is a hardlink to (\.\.\/)+.*sentinel\/secret, outside the image root/],
    // A name an `ostree ls` line would misread, pointing at the sentinel; the next layer's
    // opaque marker below it would empty the sentinel if the checkout followed the link.
    ['" -> " name, opaque marker below it', [await layerTar([{ name: 'd -> x', type: 'symlink', linkname: SENTINEL }]), await layerTar([{ name: 'd -> x/.wh..wh..opq' }])], /entry "d -> x\/\.wh\.\.wh\.\.opq" would be written through the symlink d -> x/],
    ['directory replaced by a symlink', [await layerTar([{ name: 'etc', type: 'directory' }, { name: 'etc/ok' }]), await layerTar([{ name: '.wh.etc' }, { name: 'etc', type: 'symlink', linkname: SENTINEL }]), await layerTar([{ name: 'etc/passwd', content: 'owned\n' }])], /entry "etc\/passwd" would be written through the symlink etc/],
  ];
  const pid = async () => (await th.exec('systemctl', ['show', '-p', 'MainPID', '--value', 'atomhostd.service'])).stdout.trim();
  const stored = async () => {
    const refs = await th.exec('ostree', ['refs', `--repo=${SYSROOT}/ostree/repo`, '--list', 'atomhost/layer']);
    const revs = await th.sh(`ls ${SYSROOT}/ostree/atomhost/revisions 2>/dev/null`);
    return `${refs.stdout}\n--\n${revs.stdout}`;
  };
  // atomhostd is started by D-Bus activation on the first call, and has no idle exit.
  assert.equal((await atomhost('status')).exitCode, 0, 'atomhostd answers');
  const daemon = await pid();
  assert.notEqual(daemon, '0', 'atomhostd runs in the test host');
  for (const [what, layers, expect] of cases) {
    const tag = what.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
    await pushLayers(reg.host, tag, layers);
    const sentinel = await snapshot(join(disk, 'sentinel'));
    const store = await stored();
    const r = await atomhost('container', 'install', '--name', 'h', `${reg.host}/hostile:${tag}`);
    assert.notEqual(r.exitCode, 0, `${what}: installed`);
    assert.match(r.stderr, new RegExp(`layer sha256:[0-9a-f]{64} of ${reg.host.replace(/\./g, '\\.')}/hostile:${tag}`), `${what}: the image and layer are named: ${r.stderr}`);
    assert.match(r.stderr, expect, `${what}: the entry is named`);
    assert.deepEqual(await snapshot(join(disk, 'sentinel')), sentinel, `${what}: the sentinel tree is unchanged`);
    assert.equal(await stored(), store, `${what}: no layer or revision was stored`);
    assert.equal(await pid(), daemon, `${what}: the daemon is the same process`);
  }
  assert.equal((await th.exec('test', ['-e', '/etc/systemd/system/h.service'])).exitCode, 1, 'no unit was written');
});

test('through atomhostd, a setuid file of an image is neither setuid nor reachable by another user', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  // A runnable image (busybox, sleeping) so that its unit starts and the install stays.
  const busybox = await readFile('/bin/busybox');
  await pushLayers(reg.host, 'suid', [await layerTar([{ name: 'bin', type: 'directory', mode: 0o755 }, { name: 'bin/busybox', content: busybox, mode: 0o755 }, { name: 'bin/sleep', type: 'symlink', linkname: 'busybox' }, { name: 'bin/su', content: '#!/bin/sh\nid\n', mode: 0o4755 }, { name: 'bin/sg', content: 'x', mode: 0o2755 }])], ['/bin/sleep', '600']);
  const r = await atomhost('container', 'install', '--name', 'suid', `${reg.host}/hostile:suid`);
  assert.equal(r.exitCode, 0, r.stderr);
  const revs = JSON.parse((await atomhost('--json', 'revisions')).stdout) as Revision[];
  const su = join(revs[0].containers.suid.checkout, 'rootfs/bin/su');
  assert.equal((await th.exec('stat', ['-c', '%a', su])).stdout.trim(), '755', 'setuid dropped');
  assert.equal((await th.exec('stat', ['-c', '%a', su.replace(/su$/, 'sg')])).stdout.trim(), '755', 'setgid dropped');
  assert.equal((await th.exec('systemctl', ['is-active', 'suid.service'])).stdout.trim(), 'active', 'the container runs');
  const other = await th.exec('stat', [su], { user: '65534' });
  assert.notEqual(other.exitCode, 0, `uid 65534 reaches the image's files: ${other.stdout}`);
});
