// `atomhost status --booted`, `-v` and `--pending-exit-77` on a real sysroot (tmpfs), with
// a real signed commit (a throwaway gpg key, `ostree gpg-sign`) so -v has a signer to show.
// A --sysroot here is not the running system: nothing is booted, so --booted shows no
// deployment and any second deployment is pending (rpm-ostree's rule, docs/status.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture, OS, REF } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import type { HostStatus } from '../../core/host-api.js';

let f: OsFixture;
let gnupg = '';
let fpr = '';

async function publishSigned(version: string): Promise<string> {
  const c = await f.publish(version);
  await execa('ostree', ['gpg-sign', `--repo=${f.repo}`, `--gpg-homedir=${gnupg}`, c, fpr]);
  return c;
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.create({ versions: [] });
  gnupg = join(f.scratch.dir, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  await execa('gpg', ['--homedir', gnupg, '--batch', '--passphrase', '', '--quick-gen-key', 'Release Signer <release@atomhost.test>', 'ed25519', 'sign', 'never']);
  fpr = /^fpr:+([0-9A-F]{40}):/m.exec((await execa('gpg', ['--homedir', gnupg, '--with-colons', '--list-keys'])).stdout)![1];
  const keyFile = join(f.scratch.dir, 'release.asc');
  await writeFile(keyFile, (await execa('gpg', ['--homedir', gnupg, '--armor', '--export', fpr])).stdout);
  await publishSigned('1.0');
  const add = await f.cli('remote', 'add', 'signed', f.server.url, '--gpg-import', keyFile);
  if (add.exitCode !== 0) throw new Error(`remote add: ${add.stderr}`);
  const first = await f.cli('rebase', `signed:${REF}`, '--os', OS);
  if (first.exitCode !== 0) throw new Error(`first deployment: ${first.stderr}`);
});
after(async () => {
  if (gnupg) await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
  await f?.dispose();
});

test('--pending-exit-77 exits 0 with one deployment: the next boot starts the same one', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('status', '--pending-exit-77');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /0: testos 1\.0 {2}\[default\]/, 'the status is printed as without the flag');
  const j = await f.cli('--json', 'status', '--pending-exit-77');
  assert.equal(j.exitCode, 0, j.stderr);
  assert.equal((JSON.parse(j.stdout) as HostStatus).status.deployments.length, 1);
});

test('--booted on a sysroot that is not the running system shows no deployment, in text and JSON', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('status', '--booted');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`\\(none booted: ${f.sysroot.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not the running system\\)`));
  assert.doesNotMatch(r.stdout, /testos 1\.0/);
  const all = await f.cliJson<HostStatus>('status');
  const booted = await f.cliJson<HostStatus>('status', '-b');
  assert.deepEqual(booted.status.deployments, []);
  assert.equal(booted.status.booted, null);
  assert.deepEqual(booted.spec, all.spec, 'only the deployment list is cut');
});

test('-v shows the full revision id, the deployment, its creation, the signing key in full and the kernel args', async (t) => {
  if (!requireRoot(t)) return;
  const s = await f.cliJson<HostStatus>('status');
  const d = s.status.deployments[0];
  const plain = (await f.cli('status')).stdout;
  const r = await f.cli('status', '-v');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok(!plain.includes(d.revision!.id), 'without -v the revision id is short');
  assert.match(r.stdout, new RegExp(`Revision: ${d.revision!.id} \\(deployed\\)`));
  assert.match(r.stdout, new RegExp(`Deployment: testos/deploy/${d.checksum}\\.${d.deploySerial}`));
  assert.match(r.stdout, new RegExp(`Created: ${d.revision!.created.replace(/\./g, '\\.')}`));
  assert.match(r.stdout, /Parent: \(none\)/);
  assert.match(r.stdout, new RegExp(`Signature: Valid signature by Release Signer <release@atomhost\\.test> \\(fingerprint ${fpr}, signed \\S+\\)`));
  assert.match(r.stdout, /Kernel args: /);
  assert.equal((await f.cli('status', '--verbose')).stdout, r.stdout, '--verbose is -v');
});

test('after an upgrade the new default is pending: --pending-exit-77 exits 77 and still prints; cleanup --rollback ends it', async (t) => {
  if (!requireRoot(t)) return;
  await publishSigned('2.0');
  const up = await f.cli('upgrade');
  assert.equal(up.exitCode, 0, up.stderr);
  const r = await f.cli('status', '--pending-exit-77');
  assert.equal(r.exitCode, 77, r.stderr);
  assert.match(r.stdout, /0: testos 2\.0 {2}\[default\]/);
  assert.match(r.stdout, /1: testos 1\.0 {2}\[rollback\]/);
  const j = await f.cli('--json', 'status', '--pending-exit-77');
  assert.equal(j.exitCode, 77);
  const s = JSON.parse(j.stdout) as HostStatus;
  assert.equal(s.status.deployments[0].version, '2.0');
  // -v names the parent revision in full.
  const v = await f.cli('status', '-v');
  assert.match(v.stdout, new RegExp(`Parent: ${s.status.deployments[1].revision!.id}`));
  // Without the flag the same state exits 0.
  assert.equal((await f.cli('status')).exitCode, 0);
  const clean = await f.cli('cleanup', '--rollback');
  assert.equal(clean.exitCode, 0, clean.stderr);
  const after = await f.cli('status', '--pending-exit-77');
  assert.equal(after.exitCode, 0, after.stderr);
  assert.doesNotMatch(after.stdout, /testos 1\.0/);
});

test('status flags with bad values are usage errors (exit 2), and the sysroot is untouched', async (t) => {
  if (!requireRoot(t)) return;
  const before = await f.snapshot();
  const r = await f.cli('status', '--pending-exit-77=yes');
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /option '--pending-exit-77' does not take an argument|unknown option/);
  assert.match(r.stderr, /Try 'atomhost status --help'/);
  const extra = await f.cli('status', '--booted', 'now');
  assert.equal(extra.exitCode, 2);
  assert.match(extra.stderr, /too many arguments for 'status'/);
  assert.deepEqual(await f.snapshot(), before);
});
