// atomhost compose: a treefile becomes a bootable OSTree commit (checked with ostree's own
// tools, not atomhost's) with atomhost installed from its Debian package (dpkg knows it),
// bad treefiles are refused naming every field, and the same inputs give the same content
// checksum.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildAtomhostDeb, checkAtomhostDeb, compose } from '../../compose/compose.js';
import { ensureVmOs } from '../../sandbox/vm-os.js';
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
  // The VM tests' OS (composed once per run, shared), then the same treefile composed again.
  const os = await ensureVmOs();
  const repo = os.repo;
  const c = os.stable.v1;
  const tf = parseTreefile('test/vm/os/atomhost-os-1.0.yaml');
  const dir = await mkdtemp('/var/tmp/atomhost-compose-test-');
  try {
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

    // Same treefile, same cached root, the same package (reproducible): the same content checksum.
    const again = await compose(tf, join(dir, 'repo2'), { atomhostDeb: await buildAtomhostDeb() });
    const first = /ContentChecksum:\s+([0-9a-f]{64})/.exec(await ostree('show', `--repo=${repo}`, c))![1];
    assert.equal(again.contentChecksum, first);
  } finally {
    await execa('chattr', ['-R', '-i', dir], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
});

test('compose takes only atomhost\'s package carrying its runtime: another package or one needing nodejs is refused, naming the file', async (t) => {
  if (!(await requireCommand(t, 'dpkg-deb'))) return;
  const dir = await mkdtemp('/tmp/atomhost-compose-deb-');
  try {
    // Real package files, built by dpkg-deb, with only their control fields.
    const deb = async (name: string, depends: string) => {
      const root = join(dir, name);
      await mkdir(join(root, 'DEBIAN'), { recursive: true });
      await writeFile(join(root, 'DEBIAN', 'control'), `Package: ${name}\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\nDepends: ${depends}\nDescription: test\n`);
      await execa('dpkg-deb', ['--root-owner-group', '--build', root, `${root}.deb`]);
      return `${root}.deb`;
    };
    const plain = await deb('atomhost', 'nodejs (>= 20), libc6');
    await assert.rejects(checkAtomhostDeb(plain), (e: Error) => e.message.includes(plain) && /depends on nodejs.*--with-node/.test(e.message));
    const other = await deb('other', 'libc6');
    await assert.rejects(checkAtomhostDeb(other), (e: Error) => e.message.includes(`${other} is the package other, not atomhost`));
    await assert.rejects(checkAtomhostDeb(join(dir, 'missing.deb')), /missing\.deb: no such package file/);
    await checkAtomhostDeb(await deb('atomhost', 'libc6 (>= 2.34), libstdc++6'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
