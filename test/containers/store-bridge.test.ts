// The repository calls through the libostree bridge (commit a directory, set refs, check
// out with --union -H, read a file of a commit, list a directory of a commit, list refs)
// against the `ostree` commands they replace, on a real sysroot repository: the same trees,
// the same bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, link, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { Sysroot } from '../../ostree-bridge/sysroot.js';
import { requireRoot } from '../helpers/capability.js';

let scratch: Scratch;
let sysroot: Sysroot;
let repo: string;

/** A small image-like tree: modes, owners, a symlink, a hardlink, an empty directory. */
async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'etc/empty'), { recursive: true });
  await writeFile(join(dir, 'usr/bin/tool'), '#!/bin/sh\necho tool\n');
  await chmod(join(dir, 'usr/bin/tool'), 0o755);
  await writeFile(join(dir, 'etc/conf'), 'key=value\n');
  await chown(join(dir, 'etc/conf'), 1000, 1001);
  await chmod(join(dir, 'etc/empty'), 0o700);
  await link(join(dir, 'usr/bin/tool'), join(dir, 'usr/bin/tool2'));
  await symlink('../usr/bin/tool', join(dir, 'etc/tool-link'));
}

/** Every entry with type, mode, owner, size, link target and (for files) inode. */
async function describe(dir: string): Promise<string[]> {
  const out = (await execa('find', [dir, '-mindepth', '1', '-printf', '%P %y %m %U:%G %s %l %i\n'])).stdout;
  return out.split('\n').filter(Boolean).map((l) => (l.includes(' f ') ? l : l.replace(/ \d+$/, ''))).sort();
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('atomhost-test-bridge-', 256);
  const root = join(scratch.dir, 'sysroot');
  await mkdir(root);
  await execa('ostree', ['admin', 'init-fs', root]);
  repo = join(root, 'ostree', 'repo');
  sysroot = await Sysroot.open(root);
});
after(async () => {
  sysroot?.close();
  await scratch?.dispose();
});

test('a directory committed through the bridge is the tree `ostree commit` makes; consumed, its files move into the repository', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs for the test sysroot')) return;
  const a = join(scratch.dir, 'tree-a');
  const b = join(scratch.dir, 'tree-b');
  await makeTree(a);
  await makeTree(b);
  await execa('ostree', ['commit', `--repo=${repo}`, '--branch=cli/tree', `--tree=dir=${a}`, '--subject=cli']);
  const commit = await sysroot.commitDirectory(b, { subject: 'bridge', metadata: { 'atomhost.layer': 'sha256:x', 'atomhost.tree': '[["etc","dir"]]' }, consume: true });
  const ls = async (rev: string) => (await execa('ostree', ['ls', `--repo=${repo}`, '-R', '-C', rev, '/'])).stdout;
  assert.equal(await ls(commit), await ls('cli/tree'), 'the same entries, modes, owners and contents');
  const info = sysroot.readCommit(commit);
  assert.equal(info.subject, 'bridge');
  assert.equal(info.parent, null);
  assert.deepEqual(info.metadata, { 'atomhost.layer': 'sha256:x', 'atomhost.tree': '[["etc","dir"]]' });
  assert.deepEqual(await readdir(b).catch(() => []), [], 'the consumed directory is emptied');
  assert.equal(sysroot.resolveRev('atomhost/none'), null);
  await execa('ostree', ['fsck', `--repo=${repo}`]);
});

test('refs are set and deleted together, and listed as `ostree refs --list` lists them', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs for the test sysroot')) return;
  const c = sysroot.resolveRev('cli/tree')!;
  await sysroot.setRefs({ 'atomhost/layer/aa': c, 'atomhost/layer/bb': c, 'atomhost/image/cc': c });
  const cli = async (prefix: string) => (await execa('ostree', ['refs', `--repo=${repo}`, '--list', prefix])).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(sysroot.listRefs('atomhost/layer'), ['atomhost/layer/aa', 'atomhost/layer/bb']);
  assert.deepEqual(sysroot.listRefs('atomhost/layer'), await cli('atomhost/layer'));
  assert.deepEqual(sysroot.listRefs('atomhost/image'), await cli('atomhost/image'));
  await sysroot.setRefs({ 'atomhost/layer/aa': null, 'atomhost/image/cc': null });
  assert.deepEqual(sysroot.listRefs('atomhost'), ['atomhost/layer/bb']);
  assert.equal(sysroot.resolveRev('atomhost/layer/aa'), null);
  await sysroot.setRefs({ 'atomhost/layer/bb': null });
  assert.deepEqual(sysroot.listRefs('atomhost'), []);
});

test('a checkout through the bridge is the tree `ostree checkout --union -H` makes, hardlinked to the same objects', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs for the test sysroot')) return;
  const c = sysroot.resolveRev('cli/tree')!;
  const other = join(scratch.dir, 'tree-other');
  await mkdir(join(other, 'etc'), { recursive: true });
  await writeFile(join(other, 'etc/conf'), 'replaced by the union\n');
  await writeFile(join(other, 'etc/other'), 'kept by the union\n');
  const lower = await sysroot.commitDirectory(other, { subject: 'lower', consume: true });
  const viaCli = join(scratch.dir, 'co-cli');
  const viaBridge = join(scratch.dir, 'co-bridge');
  await mkdir(viaCli);
  await mkdir(viaBridge);
  for (const rev of [lower, c]) {
    await execa('ostree', ['checkout', `--repo=${repo}`, '--union', '-H', rev, viaCli]);
    await sysroot.checkoutUnion(rev, viaBridge);
  }
  assert.deepEqual(await describe(viaBridge), await describe(viaCli), 'the same entries; files are the same inodes (the objects)');
  assert.ok((await stat(join(viaBridge, 'etc/conf'))).nlink >= 3, 'a hardlink of the object, not a copy');
  assert.ok((await readdir(join(viaBridge, 'etc'))).includes('other'), 'union: the lower tree stays');
});

test('a file of a commit reads as `ostree cat` prints it; a missing one is an error naming it', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs for the test sysroot')) return;
  const bytes = await sysroot.readCommitFile('cli/tree', '/usr/bin/tool');
  assert.equal(String(bytes), (await execa('ostree', ['cat', `--repo=${repo}`, 'cli/tree', '/usr/bin/tool'], { stripFinalNewline: false })).stdout);
  await assert.rejects(sysroot.readCommitFile('cli/tree', '/no/such/file'), /reading \/no\/such\/file of cli\/tree/);
  await assert.rejects(sysroot.readCommitFile('atomhost/none', '/x'), /reading \/x of atomhost\/none/);
});

test('a directory of a commit lists as `ostree ls -C` shows it; a missing directory is null, a missing commit or a file an error', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs for the test sysroot')) return;
  const tree = join(scratch.dir, 'tree-ls');
  const kdir = join(tree, 'usr/lib/modules/6.1.0-test');
  await mkdir(join(kdir, 'dtb'), { recursive: true });
  await writeFile(join(kdir, 'vmlinuz'), 'k'.repeat(4096));
  await writeFile(join(kdir, 'initramfs.img'), 'i'.repeat(10000));
  await writeFile(join(kdir, 'dtb', 'board.dtb'), 'd');
  await symlink('vmlinuz', join(kdir, 'kernel-link'));
  await mkdir(join(kdir, 'kernel'));
  const commit = await sysroot.commitDirectory(tree, { subject: 'ls' });
  const listed = await sysroot.listCommitDir(commit, '/usr/lib/modules/6.1.0-test');
  // "-00644 0 0   4096 CHECKSUM /usr/lib/modules/…/vmlinuz" (a directory: "d… CONTENTS META PATH").
  const cli = (await execa('ostree', ['ls', `--repo=${repo}`, '-C', commit, '/usr/lib/modules/6.1.0-test'])).stdout.split('\n').slice(1);
  const expected = cli
    .map((l) => /^([-dl])\S+ \d+ \d+\s+(\d+) ([0-9a-f]{64})(?: [0-9a-f]{64})? \/usr\/lib\/modules\/6\.1\.0-test\/([^ ]+)/.exec(l)!)
    .map((m) => ({ name: m[4], type: ({ '-': 'file', d: 'dir', l: 'symlink' } as const)[m[1] as '-' | 'd' | 'l'], size: m[1] === '-' ? Number(m[2]) : 0, checksum: m[3] }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  assert.deepEqual(listed, expected);
  assert.deepEqual(listed!.map((e) => `${e.name} ${e.type}`), ['dtb dir', 'initramfs.img file', 'kernel dir', 'kernel-link symlink', 'vmlinuz file']);
  assert.equal(await sysroot.listCommitDir(commit, '/usr/lib/ostree-boot'), null, 'no such directory in the commit');
  assert.equal(await sysroot.listCommitDir(commit, '/no/such/dir'), null, 'nor its parents');
  await assert.rejects(sysroot.listCommitDir(commit, '/usr/lib/modules/6.1.0-test/vmlinuz'), /listing \/usr\/lib\/modules\/6\.1\.0-test\/vmlinuz of [0-9a-f]{64}/);
  await assert.rejects(sysroot.listCommitDir('0'.repeat(64), '/usr'), new RegExp(`listing /usr of ${'0'.repeat(64)}`));
  await assert.rejects(sysroot.listCommitDir('atomhost/none', '/usr'), /listing \/usr of atomhost\/none/);
  // The /boot check's whole read: the kernel, initramfs and device trees with their objects.
  const { bootFiles } = await import('../../core/boot-space.js');
  const files = await bootFiles(sysroot, commit);
  assert.deepEqual(files.map((f) => `${f.path} ${f.size}`), [
    '/usr/lib/modules/6.1.0-test/initramfs.img 10000',
    '/usr/lib/modules/6.1.0-test/vmlinuz 4096',
    '/usr/lib/modules/6.1.0-test/dtb/board.dtb 1',
  ]);
  assert.equal(files[1].object, listed!.find((e) => e.name === 'vmlinuz')!.checksum);
});
