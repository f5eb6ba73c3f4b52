// Hostile images on the real registry (Debian's docker-registry), pulled and installed by
// atomhost: tricks that make two tar readers disagree, names that fool text parsers,
// escapes across layers, setuid files. Each is refused with the image, layer and entry
// named and nothing stored, or neutralized; nothing outside the container root changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { startRegistry, type Registry } from './fixtures.js';
import { layerTar, pushLayers as pushTo } from './hostile-images.js';
import type { Revision } from '../../core/revision.js';

let f: OsFixture;
let reg: Registry;

const pushLayers = (tag: string, layers: Buffer[]) => pushTo(reg.host, tag, layers);
const layerRefs = async () => (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost/layer'])).stdout;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  reg = await startRegistry(join(f.scratch.dir, 'registry'));
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
});
after(async () => {
  await reg?.stop();
  await f?.dispose();
});

test('escapes that need two readers, a text parser or a lower layer are refused, naming the layer and entry; nothing is stored', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  const cases: [string, Buffer[], RegExp][] = [
    // A pax extended header renames the entry: the name checked is the name written.
    ['pax path', [await layerTar([{ name: 'innocent', pax: { path: '../../etc/evil' } }])], /entry "\.\.\/\.\.\/etc\/evil" points outside the image root/],
    ['pax linkpath', [await layerTar([{ name: 'ok' }, { name: 'h', type: 'link', linkname: 'ok', pax: { linkpath: '../../etc/shadow' } }])], /entry "h" is a hardlink to \.\.\/\.\.\/etc\/shadow, outside the image root/],
    // A symlink whose name holds " -> " (an `ostree ls` line would be misread), then an
    // opaque marker below it in the next layer.
    ['name with " -> "', [await layerTar([{ name: 'a -> b', type: 'symlink', linkname: '../../../../tmp' }])], /entry "a -> b" is a symlink to \.\.\/\.\.\/\.\.\/\.\.\/tmp, outside the image root/],
    ['opaque marker under a symlink of a lower layer', [await layerTar([{ name: 'd', type: 'symlink', linkname: 'x' }, { name: 'x', type: 'directory' }]), await layerTar([{ name: 'd/.wh..wh..opq' }])], /entry "d\/\.wh\.\.wh\.\.opq" would be written through the symlink d/],
    ['a directory replaced by a symlink across layers', [await layerTar([{ name: 'etc', type: 'directory' }, { name: 'etc/ok' }]), await layerTar([{ name: '.wh.etc' }, { name: 'etc', type: 'symlink', linkname: 'run' }]), await layerTar([{ name: 'etc/passwd', content: 'owned' }])], /entry "etc\/passwd" would be written through the symlink etc/],
    ['hardlink to a symlink', [await layerTar([{ name: 's', type: 'symlink', linkname: 'f' }, { name: 'f' }, { name: 'h', type: 'link', linkname: 's' }])], /entry "h" is a hardlink to s, which is not a file of this image/],
    ['newline in a name under a lower symlink', [await layerTar([{ name: 'n', type: 'symlink', linkname: 'y' }, { name: 'y', type: 'directory' }]), await layerTar([{ name: 'n/a\nb' }])], /would be written through the symlink n/],
  ];
  for (const [what, layers, expect] of cases) {
    const tag = what.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 40);
    await pushLayers(tag, layers);
    const before = await f.snapshot();
    const refs = await layerRefs();
    const r = await f.cli('container', 'install', '--name', 'h', `${reg.host}/hostile:${tag}`);
    assert.notEqual(r.exitCode, 0, `${what}: installed`);
    assert.match(r.stderr, /layer sha256:[0-9a-f]{64} of .*hostile/, `${what}: the layer is named: ${r.stderr}`);
    assert.match(r.stderr, expect, what);
    assert.deepEqual(await f.snapshot(), before, `${what}: the host is unchanged`);
    assert.equal(await layerRefs(), refs, `${what}: nothing stored`);
  }
  assert.ok(!(await stat('/etc/evil').catch(() => null)), 'nothing escaped onto the machine');
});

test('setuid and setgid bits of an image do not reach the host; what was checked is what is stored', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  await pushLayers('suid', [await layerTar([{ name: 'bin', type: 'directory' }, { name: 'bin/su', content: '#!/bin/sh\nid\n', mode: 0o4755 }, { name: 'bin/sg', content: 'x', mode: 0o2755 }, { name: 'tmp', type: 'directory', mode: 0o1777 }])]);
  const r = await f.cli('container', 'install', '--name', 'suid', `${reg.host}/hostile:suid`);
  assert.equal(r.exitCode, 0, r.stderr);
  const rev = (JSON.parse((await f.cli('--json', 'revisions')).stdout) as Revision[])[0];
  const checkout = rev.containers.suid.checkout;
  assert.equal((await stat(join(checkout, 'rootfs/bin/su'))).mode & 0o7777, 0o755, 'setuid dropped');
  assert.equal((await stat(join(checkout, 'rootfs/bin/sg'))).mode & 0o7777, 0o755, 'setgid dropped');
  assert.equal((await lstat(checkout)).mode & 0o777, 0o700, 'the bundle (and the image inside) is root\'s only');
  // No object of the repository is setuid or setgid.
  const found = (await execa('find', [join(f.sysroot, 'ostree/repo/objects'), '-type', 'f', '(', '-perm', '-4000', '-o', '-perm', '-2000', ')'])).stdout.trim();
  assert.equal(found, '', `setuid objects in the repository: ${found}`);
  // The stored layer holds exactly the checked entries (recorded with the commit).
  const trees = await Promise.all((await layerRefs()).split('\n').filter(Boolean).map(async (l) => (await execa('ostree', ['show', `--repo=${f.sysroot}/ostree/repo`, '--print-metadata-key=atomhost.tree', l])).stdout));
  assert.ok(trees.some((t) => t.includes('["bin/su","file"]')), trees.join('\n'));
  assert.ok((await readdir(join(checkout, 'rootfs'))).includes('tmp'));
});
