// Signed OS commits end to end on a real sysroot: real gpg keys in a throwaway GNUPGHOME,
// `ostree gpg-sign` on the served repo (127.0.0.1), `atomhost remote add` with the key,
// pulls that libostree verifies, and status showing the signer. A refused pull leaves refs,
// deployments, boot entries and revision records exactly as they were.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture, OS, REF } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import type { HostStatus } from '../../core/host-api.js';
import type { RemoteListEntry } from '../../core/remotes.js';
import { TestHost } from '../testhost/testhost.js';
import { makeHostDisk } from '../../sandbox/host-disk.js';

let f: OsFixture;
let gnupg = '';
let keys: { trusted: { fpr: string; file: string }; other: { fpr: string; file: string } };
let v1 = '';

/** A new ed25519 signing key in the test's own GNUPGHOME; its public key exported to a file. */
async function genKey(uid: string, file: string): Promise<{ fpr: string; file: string }> {
  await execa('gpg', ['--homedir', gnupg, '--batch', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  const { stdout } = await execa('gpg', ['--homedir', gnupg, '--with-colons', '--list-keys', uid]);
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(stdout)![1];
  await writeFile(file, (await execa('gpg', ['--homedir', gnupg, '--armor', '--export', fpr])).stdout);
  return { fpr, file };
}

async function sign(checksum: string, fpr: string): Promise<void> {
  await execa('ostree', ['gpg-sign', `--repo=${f.repo}`, `--gpg-homedir=${gnupg}`, checksum, fpr]);
}

const remotes = () => f.cliJson<RemoteListEntry[]>('remote', 'list');
const localRef = async (refspec: string) => (await execa('ostree', ['rev-parse', `--repo=${f.sysroot}/ostree/repo`, refspec], { reject: false })).stdout.trim();
const errorOf = (stderr: string) => (JSON.parse(stderr) as { error: { code: string; message: string; details: Record<string, unknown> } }).error;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.create({ versions: [] });
  gnupg = join(f.scratch.dir, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  keys = {
    trusted: await genKey('Release Signer <release@atomhost.test>', join(f.scratch.dir, 'trusted.asc')),
    other: await genKey('Somebody Else <else@atomhost.test>', join(f.scratch.dir, 'other.asc')),
  };
  v1 = await f.publish('1.0');
  await sign(v1, keys.trusted.fpr);
});
after(async () => {
  if (gnupg) await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
  await f?.dispose();
});

test('remote add without a key is refused unless --no-verify is said; a non-key file is refused; nothing is added', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('remote', 'add', 'signed', f.server.url);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /remote signed: no key to verify its commits with; give --gpg-import KEYFILE .*--no-verify/);
  const notKey = join(f.scratch.dir, 'not-a-key.asc');
  await writeFile(notKey, 'hello\n');
  const bad = await f.cli('remote', 'add', 'signed', f.server.url, '--gpg-import', notKey);
  assert.notEqual(bad.exitCode, 0);
  assert.match(bad.stderr, /not-a-key\.asc/);
  const missing = await f.cli('remote', 'add', 'signed', f.server.url, '--gpg-import', join(f.scratch.dir, 'nope.asc'));
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /--gpg-import .*nope\.asc: no such file/);
  const both = await f.cli('remote', 'add', 'x', f.server.url, '--no-verify', '--gpg-import', keys.trusted.file);
  assert.equal(both.exitCode, 2);
  for (const [name, url] of [['bad name!', f.server.url], ['y', 'ftp://127.0.0.1/']]) {
    const h = await f.cli('remote', 'add', name, url, '--no-verify');
    assert.equal(h.exitCode, 2, `${name} ${url}: ${h.stderr}`);
  }
  assert.deepEqual((await remotes()).map((x) => x.name), ['origin']);
  await assert.rejects(access(join(f.sysroot, 'ostree/repo/signed.trustedkeys.gpg')));
});

test('remote add --gpg-import verifies with that key; --no-verify is listed as such', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('remote', 'add', 'signed', f.server.url, '--gpg-import', keys.trusted.file);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Added remote signed \(verifies gpg, 1 key\)/);
  const plain = await f.cli('remote', 'add', 'plain', f.server.url, '--no-verify');
  assert.equal(plain.exitCode, 0, plain.stderr);
  const both = await f.cli('remote', 'add', 'both', f.server.url, '--gpg-import', keys.other.file, '--gpg-import', keys.trusted.file);
  assert.equal(both.exitCode, 0, both.stderr);
  assert.match(both.stdout, /verifies gpg, 2 keys/);
  const list = await remotes();
  const signed = list.find((x) => x.name === 'signed')!;
  assert.equal(signed.url, f.server.url);
  assert.equal(signed.verification, 'gpg');
  assert.deepEqual(signed.gpgKeys.map((k) => k.fingerprint), [keys.trusted.fpr]);
  assert.match(signed.gpgKeys[0].uid ?? '', /Release Signer <release@atomhost\.test>/);
  assert.equal(list.find((x) => x.name === 'plain')?.verification, 'none');
  assert.deepEqual(list.find((x) => x.name === 'both')?.gpgKeys.map((k) => k.fingerprint).sort(), [keys.trusted.fpr, keys.other.fpr].sort(), 'every key given is imported');
  // ostree itself reads the same configuration.
  const cfg = await readFile(join(f.sysroot, 'ostree/repo/config'), 'utf8');
  assert.match(cfg, /\[remote "plain"\][^[]*gpg-verify=false/);
  assert.doesNotMatch(/\[remote "signed"\][^[]*/.exec(cfg)![0], /gpg-verify=false/);
  const text = await f.cli('remote', 'list');
  assert.match(text.stdout, /^plain +\S+ +NO VERIFICATION/m);
  assert.match(text.stdout, /^signed +\S+ +verifies gpg\n +key [0-9A-F]{40} Release Signer/m);
  const dup = await f.cli('remote', 'add', 'signed', f.server.url, '--no-verify');
  assert.equal(dup.exitCode, 2);
  assert.match(dup.stderr, /remote signed already exists/);
});

test('a signed commit deploys and status shows who signed it', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('rebase', `signed:${REF}`, '--os', OS);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = await f.cliJson<HostStatus>('status');
  const sig = s.status.deployments[0].signature;
  assert.equal(s.status.deployments[0].checksum, v1);
  assert.equal(sig.state, 'valid');
  assert.equal(sig.remote, 'signed');
  assert.equal(sig.signers[0].fingerprint, keys.trusted.fpr);
  assert.equal(sig.signers[0].keyId, keys.trusted.fpr.slice(-16));
  assert.equal(sig.signers[0].user, 'Release Signer <release@atomhost.test>');
  const text = await f.cli('status');
  assert.match(text.stdout, new RegExp(`Signature: Valid signature by Release Signer <release@atomhost\\.test> \\(key ${keys.trusted.fpr.slice(-16)}\\)`));
  // The second look comes from the cache and says the same.
  assert.deepEqual((await f.cliJson<HostStatus>('status')).status.deployments[0].signature, sig);
});

test('an unsigned commit is refused by name and nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  const v2 = await f.publish('2.0');
  const before = await f.snapshot();
  const r = await f.cli('--json', 'upgrade');
  assert.equal(r.exitCode, 1, r.stderr);
  const e = errorOf(r.stderr);
  assert.equal(e.code, 'AH_ERR_SIGNATURE');
  assert.equal(e.details.remote, 'signed');
  assert.equal(e.details.commit, v2);
  assert.match(e.message, new RegExp(`refused ${v2} from remote signed: the commit is not signed`));
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`signed:${REF}`), v1);
});

test('a commit signed by a key the remote does not trust is refused and nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  const v3 = await f.publish('3.0');
  await sign(v3, keys.other.fpr);
  const before = await f.snapshot();
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`refused ${v3} from remote signed: it is signed by a key the remote does not trust .*${keys.other.fpr.slice(-16)}`));
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`signed:${REF}`), v1);
  // Through a remote that trusts both keys, the same commit passes its signature check.
  const viaBoth = await execa('ostree', ['pull', `--repo=${f.sysroot}/ostree/repo`, '--commit-metadata-only', 'both', REF], { reject: false });
  assert.equal(viaBoth.exitCode, 0, viaBoth.stderr);
  await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--delete', `both:${REF}`]);
  // `upgrade --check` fetches the commit object too: it is refused there already.
  const check = await f.cli('--json', 'upgrade', '--check');
  assert.equal(check.exitCode, 1);
  assert.equal(errorOf(check.stderr).code, 'AH_ERR_SIGNATURE');
  assert.deepEqual(await f.snapshot(), before);
});

test('a newer commit signed by the trusted key deploys again', async (t) => {
  if (!requireRoot(t)) return;
  const v4 = await f.publish('4.0');
  await sign(v4, keys.trusted.fpr);
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 0, r.stderr);
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].checksum, v4);
  assert.equal(s.status.deployments[0].signature.state, 'valid');
  assert.equal(s.status.deployments[1].signature.state, 'valid');
});

test('ed25519: a malformed key spec is a usage error; a real key adds a remote that atomhost verifies itself, whatever libostree\'s features', async (t) => {
  if (!requireRoot(t)) return;
  const bad = await f.cli('remote', 'add', 'ed', f.server.url, '--sign-verify=ed25519=inline:not base64!');
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--sign-verify .*expected ed25519=inline:BASE64KEY/);
  // Debian 12's libostree is built without sign-ed25519 and cannot check these; atomhost does
  // (the pull, deploy and status paths: test/os/signing-ed25519.test.ts).
  const key = (await execa('openssl', ['pkey', '-pubout', '-outform', 'DER'], { input: (await execa('openssl', ['genpkey', '-algorithm', 'ed25519'])).stdout, encoding: 'buffer' })).stdout;
  const r = await f.cli('remote', 'add', 'ed', f.server.url, `--sign-verify=ed25519=inline:${Buffer.from(key).subarray(-32).toString('base64')}`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await remotes()).find((x) => x.name === 'ed')?.verification, 'ed25519');
  assert.equal((await f.cli('remote', 'delete', 'ed')).exitCode, 0);
});

test('remote delete removes the remote and its keys; status then says the commit is not verified', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('remote', 'delete', 'signed');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok(!(await remotes()).some((x) => x.name === 'signed'));
  await assert.rejects(access(join(f.sysroot, 'ostree/repo/signed.trustedkeys.gpg')));
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].signature.state, 'not-verified');
  assert.match((await f.cli('status')).stdout, /Signature: not verified/);
  const again = await f.cli('remote', 'delete', 'signed');
  assert.equal(again.exitCode, 1);
  assert.match(again.stderr, /remote signed is not configured/);
});

test('through atomhostd: root adds and deletes remotes, an unprivileged caller may list but not change them', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const INSIDE = '/var/lib/atomhost-test';
  const disk = join(f.scratch.dir, 'disk');
  await makeHostDisk(disk, { osname: OS, ref: REF, repoUrl: f.server.url });
  await writeFile(join(disk, 'trusted.asc'), await readFile(keys.trusted.file));
  const th = await TestHost.boot({ binds: [[disk, INSIDE]], agentEnv: { ATOMHOST_SYSROOT: `${INSIDE}/sysroot` } });
  try {
    const root = (...a: string[]) => th.exec('atomhost', a);
    const nobody = (...a: string[]) => th.exec('atomhost', a, { user: '65534' });
    const denied = await nobody('remote', 'add', 'sneaky', 'http://127.0.0.1:1/', '--no-verify');
    assert.equal(denied.exitCode, 4, denied.stderr);
    assert.match(denied.stderr, /not authorized: RemoteAdd changes the host/);
    const added = await root('remote', 'add', 'signed', f.server.url, '--gpg-import', `${INSIDE}/trusted.asc`);
    assert.equal(added.exitCode, 0, added.stderr);
    const listed = await nobody('--json', 'remote', 'list');
    assert.equal(listed.exitCode, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as RemoteListEntry[];
    assert.deepEqual(list.map((r) => [r.name, r.verification]), [['origin', 'none'], ['signed', 'gpg']]);
    assert.equal(list[1].gpgKeys[0].fingerprint, keys.trusted.fpr);
    const noDelete = await nobody('remote', 'delete', 'signed');
    assert.equal(noDelete.exitCode, 4, noDelete.stderr);
    // The daemon refuses a key-less remote as the in-process CLI does, with the same message and exit code.
    const noKey = await root('remote', 'add', 'bare', f.server.url);
    assert.equal(noKey.exitCode, 2);
    assert.match(noKey.stderr, /remote bare: no key to verify its commits with/);
    const s = await root('--json', 'status');
    assert.equal((JSON.parse(s.stdout) as HostStatus).status.deployments[0].signature.state, 'not-verified');
    assert.equal((await root('remote', 'delete', 'signed')).exitCode, 0);
    assert.deepEqual((JSON.parse((await root('--json', 'remote', 'list')).stdout) as RemoteListEntry[]).map((r) => r.name), ['origin']);
  } finally {
    await th.shutdown();
  }
});
