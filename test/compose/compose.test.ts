// atomhost compose: a treefile becomes a bootable OSTree commit (checked with ostree's own
// tools, not atomhost's) with atomhost installed from its Debian package (dpkg knows it),
// bad treefiles are refused naming every field, and the same inputs give the same content
// checksum.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildAtomhostDeb, compose } from '../../compose/compose.js';
import { parseTreefile } from '../../compose/treefile.js';
import { requireCommand, requireRoot } from '../helpers/capability.js';

const VERSION = (JSON.parse(await readFile('package.json', 'utf8')) as { version: string }).version;
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

test('the composed commit is an OSTree-bootable tree with atomhost installed by dpkg; same inputs, same content checksum', { timeout: 2_400_000 }, async (t) => {
  if (!requireRoot(t, 'mmdebstrap builds the root as root') || !(await requireCommand(t, 'mmdebstrap'))) return;
  // Its own repositories, not the VM tests' cache (sandbox/vm-os.ts): two composes of the
  // same treefile from the cached Debian root, the first building atomhost's package itself.
  const dir = await mkdtemp('/var/tmp/atomhost-compose-test-');
  try {
    const tf = parseTreefile('test/vm/os/atomhost-os-1.0.yaml');
    const first = await compose(tf, join(dir, 'repo1'));
    const repo = join(dir, 'repo1');
    const c = first.commit;
    assert.match(await ostree('show', `--repo=${repo}`, '--print-metadata-key=version', c), /'1.0'/);
    const modules = await ostree('ls', `--repo=${repo}`, '-R', c, '/usr/lib/modules');
    assert.match(modules, /\/usr\/lib\/modules\/[^/]+\/vmlinuz$/m);
    assert.match(modules, /\/usr\/lib\/modules\/[^/]+\/initramfs\.img$/m);
    const kver = /\/usr\/lib\/modules\/([^/]+)\/vmlinuz$/m.exec(modules)![1];
    // The initramfs carries Debian's ostree-prepare-root (dracut's ostree module).
    await execa('sh', ['-c', `ostree cat --repo=${repo} ${c} /usr/lib/modules/${kver}/initramfs.img > ${dir}/initrd.img`]);
    const listing = (await execa('sh', ['-c', `zcat ${dir}/initrd.img | cpio -t 2>/dev/null`])).stdout;
    assert.match(listing, /usr\/lib\/ostree\/ostree-prepare-root/);
    assert.match(await ostree('cat', `--repo=${repo}`, c, '/usr/lib/os-release'), /^OSTREE_VERSION=1\.0$/m);
    assert.equal((await ostree('ls', `--repo=${repo}`, c, '/boot')).trim().split('\n').length, 1, '/boot is empty');
    assert.match(await ostree('ls', `--repo=${repo}`, c, '/home', '/root', '/usr/local', '/ostree'), /home -> var\/home[\s\S]*root -> var\/roothome[\s\S]*local -> \.\.\/var\/usrlocal[\s\S]*ostree -> sysroot\/ostree/);
    assert.match(await ostree('ls', `--repo=${repo}`, c, '/usr/etc/systemd/system/multi-user.target.wants'), /atomhost-reconcile\.service[\s\S]*atomhost-health\.service|atomhost-health\.service[\s\S]*atomhost-reconcile\.service/);
    assert.match(await ostree('cat', `--repo=${repo}`, c, '/usr/lib/systemd/system/atomhostd.service'), /^ExecStart=\/usr\/bin\/atomhostd$/m);
    // The booted OS finds the dpkg database (moved into /usr) at its usual place.
    assert.match(await ostree('cat', `--repo=${repo}`, c, '/usr/lib/tmpfiles.d/atomhost-ostree.conf'), /^L \/var\/lib\/dpkg - - - - \/usr\/share\/dpkg\/database$/m);

    // atomhost is a package of the tree's dpkg database: the variant carrying this Node.js.
    const tree = join(dir, 'tree');
    await mkdir(tree);
    await ostree('checkout', `--repo=${repo}`, '--subpath=/usr', c, join(tree, 'usr'));
    for (const l of ['lib', 'lib64', 'bin', 'sbin']) await execa('ln', ['-s', `usr/${l}`, join(tree, l)]);
    const admindir = `--admindir=${join(tree, 'usr/share/dpkg/database')}`;
    const version = `${VERSION}+node${process.versions.node}`;
    assert.equal((await execa('dpkg-query', [admindir, '-W', '-f=${Status} ${Version}', 'atomhost'])).stdout, `install ok installed ${version}`);
    // Every file of atomhost's directory is the package's: nothing copied by hand beside it.
    const owned = new Set((await execa('dpkg-query', [admindir, '-L', 'atomhost'])).stdout.split('\n'));
    const onDisk = (await execa('find', [join(tree, 'usr/lib/atomhost'), '-type', 'f'])).stdout.split('\n').map((f) => f.slice(tree.length));
    assert.ok(onDisk.includes('/usr/lib/atomhost/node'), 'the runtime is there');
    assert.deepEqual(onDisk.filter((f) => !owned.has(f)), [], 'files under /usr/lib/atomhost that dpkg does not know');
    for (const f of ['/usr/bin/atomhost', '/usr/bin/atomhostd', '/usr/lib/atomhost/node']) assert.ok(owned.has(f), `${f} belongs to the package`);
    // The installed CLI runs in the tree, on the carried runtime.
    const v = await execa('chroot', [tree, '/usr/bin/atomhost', '--version']);
    assert.match(v.stdout, new RegExp(`\\b${VERSION.replaceAll('.', '\\.')}\\b`));
    assert.equal((await execa('chroot', [tree, '/usr/lib/atomhost/node', '--version'])).stdout.trim(), process.version);

    // Same treefile, same cached root, the same package file: the same content checksum.
    const again = await compose(tf, join(dir, 'repo2'), { atomhostDeb: await buildAtomhostDeb() });
    assert.equal(again.contentChecksum, first.contentChecksum);
    assert.match(first.contentChecksum, /^[0-9a-f]{64}$/);

    // A package that needs nodejs (Debian 12's is 18) is refused before dpkg runs.
    const plain = join(dir, 'plain.deb');
    await execa('nice', ['-n', '19', 'bash', 'scripts/package.sh', plain]);
    await assert.rejects(compose(tf, join(dir, 'repo3'), { atomhostDeb: plain }), /plain\.deb depends on nodejs.*--with-node/);
  } finally {
    await execa('chattr', ['-R', '-i', dir], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
});
