// kickstart `ostreesetup` without --nogpg: the signing key is given the documented way (a
// %pre writes it into the keys directory), the commit's signature is checked before any
// disk is touched, and the installed host keeps verifying with that key. Real gpg keys,
// `ostree gpg-sign`, a repo served on 127.0.0.1, images on real loop devices.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { CLI } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import type { HostStatus } from '../../core/host-api.js';

const SIGNED = 'testos/x86_64/stable';
const UNSIGNED = 'testos/x86_64/unsigned';
const OTHER = 'testos/x86_64/other';
let scratch: Scratch;
let server: StaticServer;
let gnupg = '';
let keysDir = '';
let trustedKey = '';
let trustedFpr = '';
let otherKey = '';

async function genKey(uid: string): Promise<string> {
  await execa('gpg', ['--homedir', gnupg, '--batch', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  return /^fpr:+([0-9A-F]{40}):/m.exec((await execa('gpg', ['--homedir', gnupg, '--with-colons', '--list-keys', uid])).stdout)![1];
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('atomhost-kssigned-');
  gnupg = join(scratch.dir, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  trustedFpr = await genKey('Release Signer <release@atomhost.test>');
  const otherFpr = await genKey('Somebody Else <else@atomhost.test>');
  otherKey = join(scratch.dir, 'else.asc');
  await writeFile(otherKey, (await execa('gpg', ['--homedir', gnupg, '--armor', '--export', otherFpr])).stdout);
  trustedKey = join(scratch.dir, 'release.asc');
  await writeFile(trustedKey, (await execa('gpg', ['--homedir', gnupg, '--armor', '--export', trustedFpr])).stdout);
  keysDir = join(scratch.dir, 'ostree-keys.d');
  await mkdir(keysDir);
  const repo = join(scratch.dir, 'repo');
  const tree = join(scratch.dir, 'tree');
  await initArchiveRepo(repo);
  await buildOsTree(tree, { osname: 'testos', version: '1.0' });
  for (const [ref, fpr] of [[SIGNED, trustedFpr], [UNSIGNED, null], [OTHER, otherFpr]] as const) {
    const c = await commitTree(repo, ref, tree, '1.0');
    if (fpr) await execa('ostree', ['gpg-sign', `--repo=${repo}`, `--gpg-homedir=${gnupg}`, c, fpr]);
  }
  server = await serveDirectory(repo);
});
after(async () => {
  if (gnupg) await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
  await server?.close();
  await scratch?.dispose();
});

async function apply(name: string, ostreesetup: string, extra = '') {
  const ks = join(scratch.dir, `${name}.ks`);
  await writeFile(ks, `${ostreesetup}\n${extra}zerombr\nclearpart --all\npart / --fstype=ext4 --size=1200\nrootpw --iscrypted --lock locked\n`);
  const image = join(scratch.dir, `${name}.img`);
  const r = await execa(process.execPath, [CLI, '--json', 'kickstart', 'apply', ks, '--image', image, '--size', '1600M'], {
    reject: false,
    env: { ATOMHOST_DEBUG: '', ATOMHOST_OSTREE_KEYS_DIR: keysDir },
  });
  return { ks, image, stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

const setup = (ref: string) => `ostreesetup --osname=testos --remote=origin --url=${server.url} --ref=${ref}`;
const errorOf = (stderr: string) => (JSON.parse(stderr) as { error: { code: string; message: string } }).error;

/** A refused install: the message, and nothing left behind (no image, no partial file, no loop device). */
async function assertRefused(name: string, r: Awaited<ReturnType<typeof apply>>, loopsBefore: string): Promise<string> {
  assert.equal(r.exitCode, 1, r.stderr);
  assert.ok(!existsSync(r.image), 'no image');
  assert.deepEqual(readdirSync(scratch.dir).filter((f) => f.includes(`${name}.img`)), [], 'no partial image');
  assert.equal((await execa('losetup', ['-a'])).stdout, loopsBefore, 'no loop device was attached');
  return errorOf(r.stderr).message;
}

test('without --nogpg and without a key, the install stops before the disk and says where the key goes', async (t) => {
  if (!requireRoot(t, 'loop devices and mount')) return;
  const loops = (await execa('losetup', ['-a'])).stdout;
  const r = await apply('nokey', setup(SIGNED));
  const msg = await assertRefused('nokey', r, loops);
  assert.match(msg, new RegExp(`nokey\\.ks:1: ostreesetup verifies the OS commit's GPG signature, and there is no key in ${keysDir}.*--nogpg`));
});

test('an unsigned commit, or one signed by another key, is refused before any disk is touched', async (t) => {
  if (!requireRoot(t, 'loop devices and mount')) return;
  await writeFile(join(keysDir, 'release.asc'), readFileSync(trustedKey));
  try {
    const loops = (await execa('losetup', ['-a'])).stdout;
    const unsigned = await assertRefused('unsigned', await apply('unsigned', setup(UNSIGNED)), loops);
    assert.match(unsigned, new RegExp(`unsigned\\.ks:1: refused origin:${UNSIGNED} from ${server.url.replace(/[.:/]/g, '\\$&')}: the commit is not signed .*no disk was touched`));
    const other = await assertRefused('other', await apply('other', setup(OTHER)), loops);
    assert.match(other, new RegExp(`other\\.ks:1: refused origin:${OTHER} .*signed by a key that is not in ${keysDir}`));
  } finally {
    await execa('rm', ['-f', join(keysDir, 'release.asc'), join(keysDir, 'z-else.asc')]);
  }
});

test('a signed commit installs with the key a %pre put in place; the installed host verifies with it', async (t) => {
  if (!requireRoot(t, 'loop devices and mount')) return;
  // Two keys, the signing one first: every key of the directory is trusted, not only one.
  const pre = `%pre --erroronfail\ncp ${otherKey} "$ATOMHOST_OSTREE_KEYS_DIR/z-else.asc"\ncp ${trustedKey} "$ATOMHOST_OSTREE_KEYS_DIR/release.asc"\n%end\n`;
  const r = await apply('signed', setup(SIGNED), pre);
  try {
    assert.equal(r.exitCode, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { volumes: { mount: string | null; where: string }[]; deployment: { checksum: string } };
    const rootPart = Number(/partition (\d+)/.exec(result.volumes.find((v) => v.mount === '/')!.where)![1]);
    const dev = (await execa('losetup', ['--find', '--show', '--partscan', r.image])).stdout.trim();
    const mnt = join(scratch.dir, 'mnt-signed');
    await mkdir(mnt);
    try {
      await execa('partx', ['-u', dev], { reject: false });
      for (let i = 0; i < 100 && !existsSync(`${dev}p${rootPart}`); i++) await new Promise((res) => setTimeout(res, 50));
      await execa('mount', ['-o', 'ro', `${dev}p${rootPart}`, mnt]);
      try {
        const config = readFileSync(join(mnt, 'ostree/repo/config'), 'utf8');
        assert.match(config, /\[remote "origin"\]/);
        assert.doesNotMatch(config, /gpg-verify=false/);
        assert.ok(existsSync(join(mnt, 'ostree/repo/origin.trustedkeys.gpg')), 'the remote has its own keyring');
        // What the installed host's `atomhost status` says about its first deployment.
        const s = await execa(process.execPath, [CLI, '--sysroot', mnt, '--json', 'status'], { reject: false, env: { ATOMHOST_DEBUG: '' } });
        assert.equal(s.exitCode, 0, s.stderr);
        const dep = (JSON.parse(s.stdout) as HostStatus).status.deployments[0];
        assert.equal(dep.checksum, result.deployment.checksum);
        assert.equal(dep.signature.state, 'valid');
        assert.equal(dep.signature.signers[0].fingerprint, trustedFpr);
        // rootpw --iscrypted --lock locked, as Fedora writes it.
        const deployDir = join(mnt, 'ostree/deploy/testos/deploy');
        const d = readdirSync(deployDir).find((x) => /^[0-9a-f]{64}\.\d+$/.test(x))!;
        assert.match(readFileSync(join(deployDir, d, 'etc/shadow'), 'utf8'), /^root:!locked:/m);
      } finally {
        await execa('umount', [mnt]);
      }
    } finally {
      await execa('losetup', ['-d', dev], { reject: false });
    }
  } finally {
    await execa('rm', ['-f', join(keysDir, 'release.asc'), join(keysDir, 'z-else.asc')]);
  }
});
