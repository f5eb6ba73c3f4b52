// atomhost compose: a treefile becomes a bootable OSTree commit (checked with ostree's own
// tools, not atomhost's), bad treefiles are refused naming every field, and the same
// inputs give the same content checksum.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureVmOs } from '../../sandbox/vm-os.js';
import { compose } from '../../compose/compose.js';
import { parseTreefile } from '../../compose/treefile.js';
import { requireCommand, requireRoot } from '../helpers/capability.js';

const ostree = async (...args: string[]) => (await execa('ostree', args)).stdout;

test('a bad treefile is refused with every field named', async () => {
  const dir = await mkdtemp('/tmp/atomhost-treefile-');
  try {
    const f = join(dir, 'bad.yaml');
    await writeFile(f, 'kind: Treefile\nosname: "my os"\nref: stable\npackages: [ok, "Bad Name"]\nfiles: { "etc/x": "no leading slash", "/var/lib/x": "state" }\nunits: { enable: [nope] }\nextra: 1\n');
    assert.throws(() => parseTreefile(f), (err: Error) => {
      for (const want of ['osname', 'version is required', 'packages[1]', 'files["etc/x"]', 'files["/var/lib/x"]', 'units.enable[0]', 'unknown field extra']) assert.match(err.message, new RegExp(want.replace(/[[\]"()]/g, '\\$&')), err.message);
      return true;
    });
    await writeFile(join(dir, 'a.yaml'), 'include: b.yaml\n');
    await writeFile(join(dir, 'b.yaml'), 'include: a.yaml\n');
    assert.throws(() => parseTreefile(join(dir, 'a.yaml')), /include loop/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the composed commit is an OSTree-bootable tree with atomhost inside; same inputs, same content checksum', { timeout: 1_800_000 }, async (t) => {
  if (!requireRoot(t, 'mmdebstrap builds the root as root') || !(await requireCommand(t, 'mmdebstrap'))) return;
  const os = await ensureVmOs();
  const c = os.stable.v1;
  assert.match(await ostree('show', `--repo=${os.repo}`, '--print-metadata-key=version', c), /'1.0'/);
  const modules = await ostree('ls', `--repo=${os.repo}`, '-R', c, '/usr/lib/modules');
  assert.match(modules, /\/usr\/lib\/modules\/[^/]+\/vmlinuz$/m);
  assert.match(modules, /\/usr\/lib\/modules\/[^/]+\/initramfs\.img$/m);
  const kver = /\/usr\/lib\/modules\/([^/]+)\/vmlinuz$/m.exec(modules)![1];
  const dir = await mkdtemp('/var/tmp/atomhost-compose-test-');
  try {
    // The initramfs carries Debian's ostree-prepare-root (dracut's ostree module).
    await execa('sh', ['-c', `ostree cat --repo=${os.repo} ${c} /usr/lib/modules/${kver}/initramfs.img > ${dir}/initrd.img`]);
    const listing = (await execa('sh', ['-c', `zcat ${dir}/initrd.img | cpio -t 2>/dev/null`])).stdout;
    assert.match(listing, /usr\/lib\/ostree\/ostree-prepare-root/);
    assert.match(await ostree('cat', `--repo=${os.repo}`, c, '/usr/lib/os-release'), /^OSTREE_VERSION=1\.0$/m);
    assert.equal((await ostree('ls', `--repo=${os.repo}`, c, '/boot')).trim().split('\n').length, 1, '/boot is empty');
    assert.match(await ostree('ls', `--repo=${os.repo}`, c, '/home', '/root', '/usr/local', '/ostree'), /home -> var\/home[\s\S]*root -> var\/roothome[\s\S]*local -> \.\.\/var\/usrlocal[\s\S]*ostree -> sysroot\/ostree/);
    assert.match(await ostree('ls', `--repo=${os.repo}`, c, '/usr/etc/systemd/system/multi-user.target.wants'), /atomhost-reconcile\.service[\s\S]*atomhost-health\.service|atomhost-health\.service[\s\S]*atomhost-reconcile\.service/);
    assert.match(await ostree('cat', `--repo=${os.repo}`, c, '/usr/lib/systemd/system/atomhostd.service'), /^ExecStart=\/usr\/bin\/atomhostd$/m);
    // The embedded runtime runs in the composed root.
    await ostree('checkout', `--repo=${os.repo}`, '--subpath=/usr', c, join(dir, 'usr'));
    const v = await execa('chroot', [dir, '/usr/lib/atomhost/node', '--version'], { reject: false });
    // chroot needs /lib*: link them as the tree does.
    if (v.exitCode !== 0) {
      for (const l of ['lib', 'lib64', 'bin']) await execa('ln', ['-s', `usr/${l}`, join(dir, l)], { reject: false });
    }
    const node = await execa('chroot', [dir, '/usr/lib/atomhost/node', '--version']);
    assert.equal(node.stdout.trim(), process.version);

    // Same treefile, same cached root: the same content checksum in another repository.
    const again = await compose(parseTreefile('test/vm/os/atomhost-os-1.0.yaml'), join(dir, 'repo'));
    const first = /ContentChecksum:\s+([0-9a-f]{64})/.exec(await ostree('show', `--repo=${os.repo}`, c))![1];
    assert.equal(again.contentChecksum, first);
  } finally {
    await execa('chattr', ['-R', '-i', dir], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
});
