// kickstart validate and apply through the real CLI: images provisioned on real loop
// devices from an OSTree repo served on 127.0.0.1, then checked with independent tools
// (blkid, lvs, ostree admin status, the BLS files, /etc of the deployment).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { CLI } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';

const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'kickstart', 'corpus');
const REF = 'testos/x86_64/stable';
let scratch: Scratch;
let server: StaticServer;

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('atomhost-kstest-');
  const repo = join(scratch.dir, 'repo');
  const tree = join(scratch.dir, 'tree');
  await initArchiveRepo(repo);
  await buildOsTree(tree, {
    osname: 'testos',
    version: '1.0',
    files: {
      'usr/lib/systemd/system/sshd.service': '[Unit]\nDescription=OpenSSH\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n',
      'usr/share/zoneinfo/Europe/Paris': 'TZif2 (test)\n',
    },
  });
  await commitTree(repo, REF, tree, '1.0');
  server = await serveDirectory(repo);
});
after(async () => {
  await server?.close();
  await scratch?.dispose();
});

/** A corpus file with the test repo's URL in place of the placeholder. */
async function kickstart(name: string, edit: (s: string) => string = (s) => s): Promise<string> {
  const text = edit(readFileSync(join(CORPUS, name), 'utf8').replace('http://127.0.0.1:1/repo', server.url));
  const path = join(scratch.dir, name);
  await writeFile(path, text);
  return path;
}

async function cli(...args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, env: { ATOMHOST_DEBUG: '' } });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

const loopsOf = async (file: string) => (await execa('losetup', ['-j', file])).stdout.trim();
const mountsUnder = (dir: string) => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(dir));

/** Attaches an image with its partitions and runs fn with the loop device. */
async function withImage<T>(image: string, fn: (dev: string) => Promise<T>): Promise<T> {
  const dev = (await execa('losetup', ['--find', '--show', '--partscan', image])).stdout.trim();
  try {
    await execa('partx', ['-u', dev], { reject: false });
    for (let i = 0; i < 100 && !existsSync(`${dev}p1`); i++) await new Promise((r) => setTimeout(r, 50));
    return await fn(dev);
  } finally {
    await execa('losetup', ['-d', dev], { reject: false });
  }
}

async function blkid(dev: string): Promise<Record<string, string>> {
  const out = (await execa('blkid', ['-p', '-o', 'export', dev], { reject: false })).stdout;
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => l.split('=', 2) as [string, string]));
}

/** Mounts dev at a fresh directory for fn. */
async function mounted<T>(dev: string, fn: (dir: string) => Promise<T>, opts: string[] = []): Promise<T> {
  const dir = join(scratch.dir, `mnt-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir);
  await execa('mount', [...opts, dev, dir]);
  try {
    return await fn(dir);
  } finally {
    await execa('umount', [dir]);
    await rm(dir, { recursive: true });
  }
}

test('validate reports every mistake with its file and line, and exits 1', async () => {
  const r = await cli('kickstart', 'validate', join(CORPUS, 'bad-value.ks'));
  assert.equal(r.exitCode, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 6, r.stderr);
  for (const [i, l] of lines.slice(0, 5).entries()) assert.ok(l.startsWith(`${join(CORPUS, 'bad-value.ks')}:${i + 1}: `), l);
  assert.match(lines[0], /ostreesetup --url: invalid URL "ftp:\/\/x\/repo"/);
  assert.match(lines[3], /timezone: invalid time zone "\.\.\/\.\.\/etc\/passwd"/);
  assert.equal(lines[5], `5 errors in ${join(CORPUS, 'bad-value.ks')} (kickstart version F45)`);

  const j = await cli('--json', 'kickstart', 'validate', join(CORPUS, 'conflict.ks'));
  assert.equal(j.exitCode, 1);
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.valid, false);
  assert.deepEqual(doc.errors.map((e: { line: number; kind: string }) => [e.line, e.kind]), [[3, 'conflict'], [4, 'conflict'], [5, 'conflict']]);
});

test('validate summarizes a valid kickstart, and says when apply cannot do it', async () => {
  const r = await cli('kickstart', 'validate', '--size', '4G', join(CORPUS, 'valid-lvm.ks'));
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /install testos:testos\/x86_64\/stable/);
  assert.match(r.stdout, /vg_atomic\/root: \/\s+xfs\s+600 MiB \(LVM\)/);
  // Valid kickstart that apply cannot do here: a warning, exit 0.
  const u = await cli('--json', 'kickstart', 'validate', join(CORPUS, 'unsupported-ostreecontainer.ks'));
  assert.equal(u.exitCode, 0);
  const doc = JSON.parse(u.stdout);
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.valid, true);
  assert.equal(doc.applicable, false);
  assert.match(doc.unsupported[0].message, /ostree container image deploy/);
});

test('apply provisions an image with every command of the corpus applied', async (t) => {
  if (!requireRoot(t, 'loop devices, mkfs and mount')) return;
  const ks = await kickstart('valid-all-commands.ks');
  const image = join(scratch.dir, 'all.img');
  await rm('/tmp/atomhost-ks-pre-marker', { force: true });
  const r = await cli('kickstart', 'apply', ks, '--image', image, '--size', '2G');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok(!r.stdout.includes('s3cret'), 'the root password is never printed');
  assert.ok(existsSync('/tmp/atomhost-ks-pre-marker'), '%pre ran on the provisioning host');
  await rm('/tmp/atomhost-ks-pre-marker', { force: true });
  assert.equal(statSync(image).size, 2 * 1024 ** 3);
  assert.equal(await loopsOf(image), '', 'no loop device left attached');
  assert.deepEqual(mountsUnder('atomhost-ks-'), [], 'nothing left mounted');

  await withImage(image, async (dev) => {
    const pt = await blkid(dev);
    assert.equal(pt.PTTYPE, 'gpt');
    const [p1, p2, p3, p4, p5] = await Promise.all([1, 2, 3, 4, 5].map((n) => blkid(`${dev}p${n}`)));
    assert.equal(p1.PART_ENTRY_TYPE, '21686148-6449-6e6f-744e-656564454649', 'BIOS boot partition (reqpart)');
    assert.equal(p2.TYPE, 'vfat', 'EFI system partition (reqpart)');
    assert.equal(p3.TYPE, 'xfs', '/boot (reqpart --add-boot)');
    assert.equal(p4.TYPE, 'ext4');
    assert.equal(p4.LABEL, 'root');
    assert.equal(p5.TYPE, 'xfs', '/var');

    await mounted(`${dev}p4`, async (root) => {
      await execa('mount', [`${dev}p3`, join(root, 'boot')]);
      await execa('mount', [`${dev}p5`, join(root, 'ostree/deploy/testos/var')]);
      try {
        const status = (await execa('ostree', ['admin', 'status', `--sysroot=${root}`])).stdout;
        assert.match(status, /testos [0-9a-f]{64}\.0\n\s+Version: 1\.0\n\s+origin refspec: origin:testos\/x86_64\/stable/);
        const entries = readdirSync(join(root, 'boot/loader/entries'));
        assert.equal(entries.length, 1);
        const bls = readFileSync(join(root, 'boot/loader/entries', entries[0]), 'utf8');
        assert.match(bls, new RegExp(`^options root=UUID=${p4.UUID} rw console=ttyS0,115200 quiet ostree=`, 'm'));
        assert.match(bls, /^linux \/ostree\/testos-[0-9a-f]{64}\/vmlinuz/m);

        const depDir = join(root, 'ostree/deploy/testos/deploy');
        const dep = join(depDir, readdirSync(depDir).find((d) => /\.0$/.test(d))!);
        const etc = (p: string) => readFileSync(join(dep, 'etc', p), 'utf8');
        const v = (p: string) => join(root, 'ostree/deploy/testos/var', p);
        assert.equal(etc('hostname'), 'node1.example.com\n');
        assert.equal(readlinkSync(join(dep, 'etc/localtime')), '../usr/share/zoneinfo/Europe/Paris');
        assert.equal(etc('locale.conf'), 'LANG=en_US.UTF-8\n');
        assert.equal(etc('vconsole.conf'), 'KEYMAP=us\n');
        assert.match(etc('selinux/config'), /^SELINUX=permissive$/m);
        assert.match(etc('systemd/timesyncd.conf.d/50-kickstart.conf'), /NTP=0.pool.ntp.org 10.0.0.1 pool.example.org\n/, 'timezone --ntpservers and timesource');
        const fstab = etc('fstab');
        for (const [uuid, mnt] of [[p4.UUID, '/'], [p3.UUID, '/boot'], [p2.UUID, '/boot/efi'], [p5.UUID, '/var']]) assert.match(fstab, new RegExp(`^UUID=${uuid} ${mnt} `, 'm'));
        const nm = etc('NetworkManager/system-connections/eth0.nmconnection');
        assert.match(nm, /interface-name=eth0/);
        assert.match(nm, /address1=10.0.0.5\/24,10.0.0.1/);
        assert.match(nm, /dns=10.0.0.1;10.0.0.2;/);
        assert.equal(statSync(join(dep, 'etc/NetworkManager/system-connections/eth0.nmconnection')).mode & 0o777, 0o600);
        assert.match(etc('NetworkManager/system-connections/eth1.nmconnection'), /autoconnect=false/);
        assert.ok(lstatSync(join(dep, 'etc/systemd/system/multi-user.target.wants/sshd.service')).isSymbolicLink(), 'sshd enabled');

        // Accounts: hashed, never plain; keys owned by their user.
        assert.match(etc('passwd'), /^core:x:1500:1500:Core User:\/home\/core:\/bin\/bash$/m);
        assert.match(etc('passwd'), /^ops:x:1000:/m);
        assert.match(etc('group'), /^wheel:x:\d+:core$/m);
        assert.match(etc('group'), /^operators:x:1600:ops$/m, 'group lines come before users join them');
        const shadow = etc('shadow');
        assert.match(shadow, /^root:\$6\$[^:]+:/m);
        assert.match(shadow, /^core:\$6\$abcdefgh\$0123456789:/m);
        assert.match(shadow, /^ops:!:/m);
        assert.ok(!shadow.includes('s3cret'));
        const hash = /^root:([^:]+):/m.exec(shadow)![1];
        const check = await execa('openssl', ['passwd', '-6', '-salt', hash.split('$')[2], '-stdin'], { input: 's3cret pass\n' });
        assert.equal(check.stdout.trim(), hash, 'the root password hashes as given');
        const keys = v('home/core/.ssh/authorized_keys');
        assert.match(readFileSync(keys, 'utf8'), /core@example/);
        assert.equal(statSync(keys).uid, 1500);
        assert.equal(statSync(keys).mode & 0o777, 0o600);
        assert.match(readFileSync(v('roothome/.ssh/authorized_keys'), 'utf8'), /root@example/);

        // %post ran in the new root (its /etc, its /var on the /var partition, its users).
        assert.equal(etc('posted'), 'posted by %post\n');
        assert.match(readFileSync(v('tmp/core-id'), 'utf8'), /uid=1500\(core\)/);
        assert.ok(existsSync(v('log/post-main.log')), '--log kept');
        assert.match(etc('nochroot-saw'), /ostree\/deploy\/testos\/deploy\/[0-9a-f]{64}\.0\n$/);

        // The host's first revision, named by the deployment's origin.
        const origin = readFileSync(`${dep}.origin`, 'utf8');
        const rev = /^revision=([0-9a-f]{64})$/m.exec(origin)?.[1];
        assert.ok(rev, origin);
        assert.ok(existsSync(join(root, 'ostree/atomhost/revisions', `${rev}.yaml`)));
      } finally {
        await execa('umount', [join(root, 'ostree/deploy/testos/var')]);
        await execa('umount', [join(root, 'boot')]);
      }
    });
  });
});

test('apply writes LVM metadata and fills the logical volumes (no device-mapper needed)', async (t) => {
  if (!requireRoot(t, 'loop devices, LVM tools and mount')) return;
  const ks = await kickstart('valid-lvm.ks', (s) => s.replace('--url=http://127.0.0.1:1/repo', `--url=${server.url}`));
  const image = join(scratch.dir, 'lvm.img');
  const r = await cli('--json', 'kickstart', 'apply', ks, '--image', image, '--size', '2G');
  assert.equal(r.exitCode, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result.kargs.slice(0, 4), ['root=/dev/mapper/vg_atomic-root', 'rd.lvm.lv=vg_atomic/root', 'rd.lvm.lv=vg_atomic/swap', 'rw']);
  assert.equal(result.finish, 'poweroff');

  await withImage(image, async (dev) => {
    const cfg = `devices { filter=["a|^${dev}p|","r|.*|"] use_devicesfile=0 obtain_device_list_from_udev=0 }`;
    const lvs = (await execa('lvs', ['--config', cfg, '--noheadings', '--nosuffix', '--units', 'm', '-o', 'vg_name,lv_name,lv_size,seg_pe_ranges'])).stdout;
    const rows = Object.fromEntries(lvs.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([vg, lv, size, range]) => [`${vg}/${lv}`, { size: Number(size), range }]));
    assert.deepEqual(Object.keys(rows).sort(), ['vg_atomic/root', 'vg_atomic/swap', 'vg_atomic/var']);
    assert.equal(rows['vg_atomic/root'].size, 600);
    // The root LV's file system, found where LVM says its extents are.
    const pv = `${dev}p2`;
    const peStart = Number((await execa('pvs', ['--config', cfg, '--noheadings', '--nosuffix', '--units', 'b', '-o', 'pe_start', pv])).stdout.trim());
    const first = Number(/:(\d+)-/.exec(rows['vg_atomic/root'].range)![1]);
    const lvDev = (await execa('losetup', ['--find', '--show', '--offset', String(peStart + first * 4 * 1024 * 1024), '--sizelimit', String(600 * 1024 * 1024), pv])).stdout.trim();
    try {
      assert.equal((await blkid(lvDev)).TYPE, 'xfs');
      await mounted(lvDev, async (root) => {
        await execa('mount', [`${dev}p1`, join(root, 'boot')]);
        try {
          assert.match((await execa('ostree', ['admin', 'status', `--sysroot=${root}`])).stdout, /Version: 1\.0/);
          const dep = join(root, 'ostree/deploy/testos/deploy', readdirSync(join(root, 'ostree/deploy/testos/deploy')).find((d) => /\.0$/.test(d))!);
          const fstab = readFileSync(join(dep, 'etc/fstab'), 'utf8');
          assert.match(fstab, /^\/dev\/mapper\/vg_atomic-root \/ xfs /m);
          assert.match(fstab, /^\/dev\/mapper\/vg_atomic-swap none swap /m);
          assert.match(readFileSync(join(dep, 'etc/shadow'), 'utf8'), /^root:!:/m, 'rootpw --lock');
        } finally {
          await execa('umount', [join(root, 'boot')]);
        }
      });
    } finally {
      await execa('losetup', ['-d', lvDev]);
    }
  });
});

test('autopart lays out /boot and LVM root and swap as Anaconda does', async (t) => {
  if (!requireRoot(t, 'loop devices, LVM tools and mount')) return;
  const ks = join(scratch.dir, 'autopart.ks');
  await writeFile(ks, `ostreesetup --osname=testos --remote=origin --url=${server.url} --ref=${REF} --nogpg\nzerombr\nclearpart --all\nautopart\nrootpw --lock\n`);
  const image = join(scratch.dir, 'autopart.img');
  const r = await cli('--json', 'kickstart', 'apply', ks, '--image', image, '--size', '2G');
  assert.equal(r.exitCode, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { volumes: { mount: string | null; fstype: string; where: string }[]; kargs: string[] };
  assert.deepEqual(
    result.volumes.map((v) => [v.mount, v.fstype, v.where]),
    [
      [null, 'biosboot', 'partition 1'],
      ['/boot/efi', 'efi', 'partition 2'],
      ['/boot', 'ext4', 'partition 3'],
      [null, 'lvmpv', 'partition 4'],
      ['swap', 'swap', 'testos/swap'],
      ['/', 'xfs', 'testos/root'],
    ],
  );
  assert.deepEqual(result.kargs, ['root=/dev/mapper/testos-root', 'rd.lvm.lv=testos/root', 'rd.lvm.lv=testos/swap', 'rw']);
});

test('a failing %post --erroronfail leaves no image, no loop device and no mount', async (t) => {
  if (!requireRoot(t, 'loop devices and mount')) return;
  const ks = await kickstart('valid-lvm.ks', (s) => `${s}%post --erroronfail\necho about to fail\nexit 3\n%end\n`);
  const image = join(scratch.dir, 'failed.img');
  const before = (await execa('losetup', ['-a'])).stdout;
  const r = await cli('kickstart', 'apply', ks, '--image', image, '--size', '2G');
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /^error: kickstart apply failed at %post: %post script at .*valid-lvm\.ks:14 exited with 3 \(--erroronfail\)/m);
  assert.ok(!existsSync(image), 'no image presented as good');
  assert.deepEqual(readdirSync(scratch.dir).filter((f) => f.includes('failed.img')), [], 'no partial file left');
  assert.equal((await execa('losetup', ['-a'])).stdout, before, 'loop devices as before');
  assert.match(r.stderr, /its last output:\n\s+about to fail$/m, 'the script output is shown');
  assert.deepEqual(mountsUnder('atomhost-ks-'), []);
});

test('apply on a block device; a failure there wipes the table it wrote', async (t) => {
  if (!requireRoot(t, 'loop devices')) return;
  const backing = join(scratch.dir, 'disk.raw');
  await execa('truncate', ['-s', '2G', backing]);
  const disk = (await execa('losetup', ['--find', '--show', backing])).stdout.trim();
  t.after(() => execa('losetup', ['-d', disk], { reject: false }));
  const ks = await kickstart('valid-autopart.ks', (s) => s.replace('https://example.com/repo', `${server.url} --nogpg`).replace('%include include/network.ks', 'network --hostname=disk.example.com'));
  const ok = await cli('kickstart', 'apply', ks, '--disk', disk);
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.equal((await blkid(disk)).PTTYPE, 'gpt');

  // The disk now holds data: a kickstart without clearpart/zerombr is refused, the disk untouched.
  const noClear = await cli('kickstart', 'apply', ks, '--disk', disk);
  assert.equal(noClear.exitCode, 2);
  assert.match(noClear.stderr, /holds data .*clearpart --all \(or zerombr\)/);
  assert.equal((await blkid(disk)).PTTYPE, 'gpt');

  const failing = await kickstart('valid-autopart.ks', (s) => `zerombr\n${s.replace('https://example.com/repo', 'http://127.0.0.1:9/nothing --nogpg').replace('%include include/network.ks', '')}`);
  const bad = await cli('kickstart', 'apply', failing, '--disk', disk);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stderr, /127\.0\.0\.1:9/);
  assert.equal((await blkid(disk)).PTTYPE, undefined, 'no half-written table left to boot from');
});
