// ed25519-signed OS commits end to end on a real sysroot, on Debian 12's libostree (built
// without sign-ed25519: atomhost checks the signatures itself). Keys are made and commits
// signed with openssl, over the commit object file of the served archive repo; the signatures
// go into the commit's detached metadata as ostree's sign API keeps them (ostree.sign.ed25519,
// aay), which ostree itself then shows. A refused pull or deploy leaves refs, deployments, boot
// entries and revision records exactly as they were.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture, OS, REF } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import type { HostStatus } from '../../core/host-api.js';
import type { RemoteListEntry } from '../../core/remotes.js';
import { readDetachedSignatures, writeDetachedSignatures } from '../../ostree-bridge/detached-metadata.js';

const KEY = 'ostree.sign.ed25519';
let f: OsFixture;
type Pair = { pem: string; pub: string };
let keys: { trusted: Pair; other: Pair; third: Pair };
let v1 = '';
let v1Signature: Buffer;

/** A new ed25519 key made by openssl; pub is the base64 of its 32 raw public bytes. */
async function genKey(name: string): Promise<Pair> {
  const pem = join(f.scratch.dir, `${name}.pem`);
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', pem]);
  const der = Buffer.from((await execa('openssl', ['pkey', '-in', pem, '-pubout', '-outform', 'DER'], { encoding: 'buffer' })).stdout);
  return { pem, pub: der.subarray(-32).toString('base64') };
}

/** The served repo's commit object file: the bytes an ostree ed25519 signature covers. */
const commitFile = (c: string) => join(f.repo, 'objects', c.slice(0, 2), `${c.slice(2)}.commit`);

/** Signs the commit with each key (openssl) and stores the signatures as its detached metadata. */
async function sign(checksum: string, ...pairs: Pair[]): Promise<Buffer[]> {
  const sigs: Buffer[] = [];
  for (const [i, p] of pairs.entries()) {
    const out = join(f.scratch.dir, `sig-${checksum.slice(0, 8)}-${i}`);
    await execa('openssl', ['pkeyutl', '-sign', '-inkey', p.pem, '-rawin', '-in', commitFile(checksum), '-out', out]);
    sigs.push(await readFile(out));
  }
  writeDetachedSignatures(f.repo, checksum, KEY, sigs);
  return sigs;
}

const sysrepo = () => `${f.sysroot}/ostree/repo`;
const remotes = () => f.cliJson<RemoteListEntry[]>('remote', 'list');
const localRef = async (refspec: string) => (await execa('ostree', ['rev-parse', `--repo=${sysrepo()}`, refspec], { reject: false })).stdout.trim();
const errorOf = (stderr: string) => (JSON.parse(stderr) as { error: { code: string; message: string; details: Record<string, unknown> } }).error;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.create({ versions: [] });
  keys = { trusted: await genKey('trusted'), other: await genKey('other'), third: await genKey('third') };
  v1 = await f.publish('1.0');
  [v1Signature] = await sign(v1, keys.trusted);
});
after(async () => {
  await f?.dispose();
});

test('the signatures are where ostree keeps them: ostree itself shows the detached metadata key', async (t) => {
  if (!requireRoot(t)) return;
  const shown = await execa('ostree', ['show', `--repo=${f.repo}`, v1, `--print-detached-metadata-key=${KEY}`]);
  // One array of 64 bytes (aay), exactly the signature openssl made.
  const m = /^\[\[byte ((?:0x[0-9a-f]{2}(?:, )?){64})\]\]$/.exec(shown.stdout.trim());
  assert.ok(m, shown.stdout);
  assert.deepEqual(Buffer.from(m[1].split(', ').map((b) => parseInt(b, 16))), v1Signature);
  assert.deepEqual(readDetachedSignatures(f.repo, v1, KEY), [v1Signature]);
});

test('a malformed --sign-verify is refused at remote add, naming the flag; nothing is added', async (t) => {
  if (!requireRoot(t)) return;
  const badFile = join(f.scratch.dir, 'bad-keys');
  await writeFile(badFile, `${keys.trusted.pub}\nnot-a-key\n`);
  const short = Buffer.alloc(31, 1).toString('base64');
  const cases: [string, RegExp][] = [
    ['ed25519=inline:not base64!', /--sign-verify "ed25519=inline:not base64!": .*expected ed25519=inline:BASE64KEY/],
    [`ed25519=inline:${short}`, /--sign-verify .*: the key is not an ed25519 public key \(base64 of 32 bytes\)/],
    ['ed25519=file:relative/keys', /--sign-verify .*expected .*ed25519=file:\/ABSOLUTE\/PATH/],
    [`ed25519=file:${join(f.scratch.dir, 'nope')}`, /--sign-verify .*nope": no such file/],
    [`ed25519=file:${badFile}`, /--sign-verify .*bad-keys line 2 is not an ed25519 public key/],
    ['rsa=inline:AAAA', /--sign-verify .*expected ed25519=inline/],
  ];
  for (const [spec, msg] of cases) {
    const r = await f.cli('--json', 'remote', 'add', 'ed', f.server.url, `--sign-verify=${spec}`);
    assert.equal(r.exitCode, 2, `${spec}: ${r.stderr}`);
    const e = errorOf(r.stderr);
    assert.equal(e.code, 'AH_ERR_INVALID_ARGUMENT');
    assert.equal(e.details.field, 'sign-verify');
    assert.match(e.message, msg);
  }
  const two = await f.cli('remote', 'add', 'ed', f.server.url, `--sign-verify=ed25519=inline:${keys.trusted.pub}`, `--sign-verify=ed25519=inline:${keys.other.pub}`);
  assert.equal(two.exitCode, 2);
  assert.match(two.stderr, /a remote takes one inline key; put several keys in one file/);
  assert.deepEqual((await remotes()).map((x) => x.name), ['origin']);
  assert.doesNotMatch(await readFile(join(sysrepo(), 'config'), 'utf8'), /"ed"/);
});

test('remote add --sign-verify=ed25519=inline:KEY writes libostree\'s own options and lists ed25519', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('remote', 'add', 'ed', f.server.url, `--sign-verify=ed25519=inline:${keys.trusted.pub}`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Added remote ed \(verifies ed25519\)/);
  const group = /\[remote "ed"\][^[]*/.exec(await readFile(join(sysrepo(), 'config'), 'utf8'))![0];
  assert.match(group, /^sign-verify=ed25519$/m);
  assert.match(group, new RegExp(`^verification-ed25519-key=${keys.trusted.pub.replace(/[+/]/g, '\\$&')}$`, 'm'));
  assert.match(group, /^gpg-verify=false$/m);
  assert.equal((await remotes()).find((x) => x.name === 'ed')?.verification, 'ed25519');
});

test('a commit signed by the trusted key deploys; status shows the key and the remote', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('rebase', `ed:${REF}`, '--os', OS);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = await f.cliJson<HostStatus>('status');
  const d = s.status.deployments[0];
  assert.equal(d.checksum, v1);
  assert.equal(d.signature.state, 'valid');
  assert.equal(d.signature.remote, 'ed');
  assert.deepEqual(d.signature.signers.map((x) => [x.type, x.fingerprint, x.valid]), [['ed25519', keys.trusted.pub, true]]);
  const text = await f.cli('status');
  assert.match(text.stdout, new RegExp(`Signature: Valid signature by ed25519 key ${keys.trusted.pub.slice(0, 16).replace(/[+/]/g, '\\$&')} \\(remote ed\\)`));
  const verbose = await f.cli('status', '-v');
  assert.ok(verbose.stdout.includes(`Signature: Valid signature by ed25519 key ${keys.trusted.pub}`), verbose.stdout);
});

test('an unsigned commit is refused by name and nothing changes, also for upgrade --check', async (t) => {
  if (!requireRoot(t)) return;
  const v2 = await f.publish('2.0');
  const before = await f.snapshot();
  const r = await f.cli('--json', 'upgrade');
  assert.equal(r.exitCode, 1, r.stderr);
  const e = errorOf(r.stderr);
  assert.equal(e.code, 'AH_ERR_SIGNATURE');
  assert.equal(e.details.remote, 'ed');
  assert.equal(e.details.commit, v2);
  assert.match(e.message, new RegExp(`refused ${v2} from remote ed: the commit is not signed`));
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`ed:${REF}`), v1, 'the remote ref is where it was');
  const check = await f.cli('--json', 'upgrade', '--check');
  assert.equal(check.exitCode, 1, check.stderr);
  assert.equal(errorOf(check.stderr).code, 'AH_ERR_SIGNATURE');
  assert.equal(await localRef(`ed:${REF}`), v1);
  assert.deepEqual(await f.snapshot(), before);
});

test('a commit signed by another key is refused and nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  const v3 = await f.publish('3.0');
  await sign(v3, keys.other);
  const before = await f.snapshot();
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`refused ${v3} from remote ed: its ed25519 signature is not valid for a key the remote trusts \\(1 key; signed by another key, or damaged\\); nothing was changed`));
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`ed:${REF}`), v1);
});

test('a damaged signature (one byte flipped) is refused; the intact one deploys', async (t) => {
  if (!requireRoot(t)) return;
  const v4 = await f.publish('4.0');
  const [sig] = await sign(v4, keys.trusted);
  const bad = Buffer.from(sig);
  bad[17] ^= 0x01;
  writeDetachedSignatures(f.repo, v4, KEY, [bad]);
  const before = await f.snapshot();
  const r = await f.cli('--json', 'upgrade');
  assert.equal(r.exitCode, 1, r.stderr);
  assert.equal(errorOf(r.stderr).details.commit, v4);
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`ed:${REF}`), v1);
  // The same commit with its real signature: the detached metadata is fetched again and passes.
  writeDetachedSignatures(f.repo, v4, KEY, [sig]);
  const ok = await f.cli('upgrade');
  assert.equal(ok.exitCode, 0, ok.stderr);
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].checksum, v4);
  assert.equal(s.status.deployments[0].signature.state, 'valid');
  assert.equal(await localRef(`ed:${REF}`), v4);
});

test('a key file with several keys: a signature by any of them passes, one by a key not in it does not', async (t) => {
  if (!requireRoot(t)) return;
  const file = join(f.scratch.dir, 'release-keys.ed25519');
  await writeFile(file, `${keys.other.pub}\n\n${keys.third.pub}\n`);
  const add = await f.cli('remote', 'add', 'multi', f.server.url, `--sign-verify=ed25519=file:${file}`);
  assert.equal(add.exitCode, 0, add.stderr);
  assert.match(/\[remote "multi"\][^[]*/.exec(await readFile(join(sysrepo(), 'config'), 'utf8'))![0], new RegExp(`^verification-ed25519-file=${file}$`, 'm'));
  const v5 = await f.publish('5.0');
  await sign(v5, keys.trusted); // not in the file
  const before = await f.snapshot();
  const refused = await f.cli('rebase', `multi:${REF}`);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, new RegExp(`refused ${v5} from remote multi`));
  assert.deepEqual(await f.snapshot(), before);
  assert.equal(await localRef(`multi:${REF}`), '', 'no ref was left behind');
  // Signed by two keys, the second of which the file holds.
  await sign(v5, keys.trusted, keys.third);
  const ok = await f.cli('rebase', `multi:${REF}`);
  assert.equal(ok.exitCode, 0, ok.stderr);
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].checksum, v5);
  assert.deepEqual(s.status.deployments[0].signature.signers.map((x) => [x.fingerprint, x.valid]), [[keys.third.pub, true]]);
  // The file is read on every check: the key taken out of it, status says so at once.
  await writeFile(file, `${keys.other.pub}\n`);
  const after = await f.cliJson<HostStatus>('status');
  assert.equal(after.status.deployments[0].signature.state, 'invalid');
  assert.match(await f.cli('status').then((x) => x.stdout), /Signature: Invalid ed25519 signature: none of its 2 ed25519 signatures is valid for a key the remote trusts/);
  await writeFile(file, `${keys.other.pub}\n${keys.third.pub}\n`);
});

test('a commit already in the repo is checked again at deploy time', async (t) => {
  if (!requireRoot(t)) return;
  const v6 = await f.publish('6.0'); // unsigned
  // Brought in by another tool, without the gate (no remote, no ref).
  await execa('ostree', ['pull-local', `--repo=${sysrepo()}`, f.repo, v6]);
  const before = await f.snapshot();
  const r = await f.cli('--json', 'deploy', v6);
  assert.equal(r.exitCode, 1, r.stderr);
  const e = errorOf(r.stderr);
  assert.equal(e.code, 'AH_ERR_SIGNATURE');
  assert.equal(e.details.remote, 'multi');
  assert.equal(e.details.commit, v6);
  assert.deepEqual(await f.snapshot(), before);
  await sign(v6, keys.other);
  // Signed now, and the signature copied into the sysroot's repo as a pull would fetch it: it deploys.
  writeDetachedSignatures(sysrepo(), v6, KEY, readDetachedSignatures(f.repo, v6, KEY));
  const ok = await f.cli('deploy', v6);
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.equal((await f.cliJson<HostStatus>('status')).status.deployments[0].checksum, v6);
});
