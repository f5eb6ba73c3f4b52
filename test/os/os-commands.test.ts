// The OS commands on a real sysroot, checked with ostree's own status and the BLS files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { OsFixture, OS, REF } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import type { HostStatus, UpdatePreview } from '../../core/host-api.js';
import type { Revision } from '../../core/revision.js';

let f: OsFixture;
let v1 = '';
let v2 = '';

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.create({ versions: [] });
  v1 = await f.publish('1.0');
});
after(async () => f?.dispose());

test('rebase makes the first deployment and the first revision', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('rebase', `origin:${REF}`, '--os', OS);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Deployed 1\.0 as revision [0-9a-f]{12}/);
  assert.deepEqual(await f.ostreeDeployments(), [`${v1}.0`]);
  assert.match(await f.ostreeStatus(), /Version: 1\.0/);
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.kind, 'Host');
  assert.equal(s.spec.refspec, `origin:${REF}`);
  const rev = s.status.deployments[0].revision!;
  assert.equal(rev.os.checksum, v1);
  assert.equal(rev.parent, null);
  // The origin names the revision and the record is on disk.
  const origin = await readFile(join(f.sysroot, 'ostree/deploy', OS, 'deploy', `${v1}.0.origin`), 'utf8');
  assert.match(origin, new RegExp(`\\[atomhost\\]\\s*revision=${rev.id}`));
  const record = YAML.parse((await f.revisionFiles())[`${rev.id}.yaml`]) as Revision;
  assert.equal(record.os.version, '1.0');
});

test('upgrade --check exits 77 when the refspec has nothing new', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('upgrade', '--check');
  assert.equal(r.exitCode, 77, r.stderr);
  assert.match(r.stdout, /No update available/);
});

test('upgrade --check and --preview show the new version and its file diff without deploying', async (t) => {
  if (!requireRoot(t)) return;
  v2 = await f.publish('2.0', { files: { 'usr/share/testos/VERSION': '2.0\n', 'usr/share/testos/NEWS': 'new in 2.0\n' } });
  const before = await f.snapshot();
  const check = await f.cli('upgrade', '--check');
  assert.equal(check.exitCode, 0, check.stderr);
  assert.match(check.stdout, /1\.0 → 2\.0/);
  const p = await f.cliJson<UpdatePreview>('upgrade', '--preview');
  assert.equal(p.available, true);
  assert.equal(p.to?.checksum, v2);
  assert.ok(p.files?.added.includes('/usr/share/testos/NEWS'), JSON.stringify(p.files));
  assert.ok(p.files?.modified.includes('/usr/share/testos/VERSION'));
  assert.deepEqual(await f.snapshot(), before, 'check and preview deploy nothing');
});

test('upgrade deploys the new commit as the default with a new revision; the old one is the rollback', async (t) => {
  if (!requireRoot(t)) return;
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(await f.ostreeDeployments(), [`${v2}.0`, `${v1}.0`]);
  const menu = await f.bootMenu();
  assert.equal(menu.length, 2);
  assert.match(menu[0].title, /2\.0/);
  assert.match(menu[1].title, /1\.0/);
  const s = await f.cliJson<HostStatus>('status');
  const [d0, d1] = s.status.deployments;
  assert.equal(d0.default, true);
  assert.equal(d1.rollback, true);
  assert.equal(d0.revision?.parent, d1.revision?.id, 'the new revision descends from the old');
  assert.equal(s.status.rollback, d1.revision?.id);
  const human = await f.cli('status');
  assert.match(human.stdout, /0: testos 2\.0\s+\[default\]/);
  assert.match(human.stdout, /1: testos 1\.0\s+\[rollback\]/);
});

test('rollback makes the previous deployment and its revision the default', async (t) => {
  if (!requireRoot(t)) return;
  const before = await f.cliJson<HostStatus>('status');
  const r = await f.cli('rollback');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(await f.ostreeDeployments(), [`${v1}.0`, `${v2}.0`]);
  assert.match((await f.bootMenu())[0].title, /1\.0/);
  const after = await f.cliJson<HostStatus>('status');
  assert.equal(after.spec.revision, before.status.deployments[1].revision?.id);
  assert.equal(after.status.deployments[1].revision?.state, 'rolled-back');
  // And back again.
  assert.equal((await f.cli('rollback')).exitCode, 0);
  assert.deepEqual(await f.ostreeDeployments(), [`${v2}.0`, `${v1}.0`]);
});

test('kargs --append/--replace/--delete make new deployments whose boot entries carry them', async (t) => {
  if (!requireRoot(t)) return;
  let r = await f.cli('kargs', '--append', 'console=ttyS0', '--append', 'quiet');
  assert.equal(r.exitCode, 0, r.stderr);
  let menu = await f.bootMenu();
  assert.match(menu[0].options, /^console=ttyS0 quiet ostree=/);
  r = await f.cli('kargs', '--replace', 'console=tty1', '--delete', 'quiet');
  assert.equal(r.exitCode, 0, r.stderr);
  menu = await f.bootMenu();
  assert.match(menu[0].options, /^console=tty1 ostree=/);
  const k = await f.cliJson<{ kargs: string[] }>('kargs');
  assert.deepEqual(k.kargs, ['console=tty1']);
  const s = await f.cliJson<HostStatus>('status');
  assert.deepEqual(s.status.deployments[0].revision?.os.kargs, ['console=tty1']);
  assert.equal(s.status.deployments[0].checksum, v2, 'a kargs change deploys the same commit');
  const bad = await f.cli('kargs', '--delete', 'nosuchkarg');
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /^error: kernel argument nosuchkarg is not set/);
});

test('deploy VERSION finds an older version in the history and deploys it; deploy CHECKSUM too', async (t) => {
  if (!requireRoot(t)) return;
  let r = await f.cli('deploy', '1.0');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await f.ostreeDeployments())[0], `${v1}.0`);
  r = await f.cli('deploy', v2);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await f.ostreeDeployments())[0].split('.')[0], v2);
  const s = await f.cliJson<HostStatus>('status');
  assert.deepEqual(s.status.deployments[0].kargs, ['console=tty1'], 'kernel arguments carry over');
});

test('pin keeps a deployment through later deploys; unpin lets it go', async (t) => {
  if (!requireRoot(t)) return;
  const pinnedChecksum = (await f.ostreeDeployments())[1];
  assert.equal((await f.cli('pin', '1')).exitCode, 0);
  assert.match(await f.ostreeStatus(), /Pinned: yes/);
  await f.publish('3.0');
  assert.equal((await f.cli('upgrade')).exitCode, 0);
  assert.equal((await f.cli('kargs', '--append', 'x=1')).exitCode, 0);
  const deps = await f.ostreeDeployments();
  assert.ok(deps.includes(pinnedChecksum), `pinned ${pinnedChecksum} kept: ${deps}`);
  const idx = deps.indexOf(pinnedChecksum);
  assert.equal((await f.cli('unpin', String(idx))).exitCode, 0);
  assert.doesNotMatch(await f.ostreeStatus(), /Pinned: yes/);
});

test('cleanup --rollback removes the rollback deployment; revision records survive', async (t) => {
  if (!requireRoot(t)) return;
  const before = await f.revisionFiles();
  const n = (await f.ostreeDeployments()).length;
  const r = await f.cli('cleanup', '--rollback');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await f.ostreeDeployments()).length, n - 1);
  assert.equal(Object.keys(await f.bootEntries()).length, n - 1);
  assert.deepEqual(Object.keys(await f.revisionFiles()), Object.keys(before));
});

test('revisions and diff speak about whole revisions', async (t) => {
  if (!requireRoot(t)) return;
  const revs = await f.cliJson<Revision[]>('revisions');
  assert.ok(revs.length >= 6);
  const a = revs.find((r) => r.os.version === '1.0')!;
  const b = revs.find((r) => r.os.version === '3.0')!;
  const d = await f.cliJson<{ os: { files: { added: string[]; modified: string[] } } }>('diff', a.id.slice(0, 10), b.id);
  assert.ok(d.os.files.modified.includes('/usr/share/testos/VERSION'));
  const human = await f.cli('diff', a.id.slice(0, 10), b.id.slice(0, 10));
  assert.match(human.stdout, /OS: 1\.0 → 3\.0/);
});
