// Revision history that stays flat: the index beside the records, paging, its repair when
// missing, stale or torn, and retention (named, failed and newest kept; a failed release
// stays refused after pruning). Real stores on tmpfs, a real sysroot for the end-to-end part.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { requireRoot } from '../helpers/capability.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { LocalHost } from '../../core/local-host.js';
import { RevisionStore, keepRevisionsSetting, revisionId, type Revision, type RevisionState } from '../../core/revision.js';

const scratches: Scratch[] = [];
after(async () => {
  for (const s of scratches) await s.dispose();
});

/** A store under a fresh tmpfs (the sysroot path it would have). */
async function scratchStore(): Promise<RevisionStore> {
  const s = await makeScratch('atomhost-history-', 512);
  scratches.push(s);
  return new RevisionStore(s.dir);
}

function sysrootOf(store: RevisionStore): string {
  return join(store.dir, '..', '..', '..');
}

/** A valid record (its id is its content hash) created at second `i` of a day in 2030. */
function synthetic(i: number, state: RevisionState = 'rolled-back', year = 2030): Revision {
  const content = {
    os: { osname: 'os', remote: 'origin', refspec: 'origin:os/stable', checksum: i.toString(16).padStart(64, '0'), version: `v${i}`, kargs: [] },
    containers: {},
    units: {},
    parent: null,
  };
  const created = new Date(Date.UTC(year, 0, 1) + i * 1000).toISOString();
  return { id: revisionId(content), ...content, created, state };
}

/** Writes records as files, behind the store's back (as an older atomhost or a crash would leave them). */
async function writeBehind(store: RevisionStore, revs: Revision[]): Promise<void> {
  await mkdir(store.dir, { recursive: true });
  // JSON is YAML too, and much quicker to write for ten thousand records.
  for (const r of revs) await writeFile(join(store.dir, `${r.id}.yaml`), JSON.stringify(r));
}

/** The truth: every record file parsed, newest first. */
async function allFromFiles(store: RevisionStore): Promise<string[]> {
  const revs: Revision[] = [];
  for (const f of await readdir(store.dir)) revs.push(YAML.parse(await readFile(join(store.dir, f), 'utf8')) as Revision);
  return revs.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1)).map((r) => r.id);
}

test('10,000 records: the first page reads only its own records once the index exists, and pages join into the full list', async (t) => {
  if (!requireRoot(t)) return;
  const store = await scratchStore();
  const revs = Array.from({ length: 10_000 }, (_, i) => synthetic(i));
  await writeBehind(store, revs);
  // No index yet: the first listing builds it from every record.
  const first = await store.page({ limit: 20 });
  assert.equal(first.total, 10_000);
  assert.equal(store.recordReads, 10_000 + 20);
  // From then on a page costs its own records only.
  store.recordReads = 0;
  const fresh = new RevisionStore(sysrootOf(store));
  const p1 = await fresh.page({ limit: 20 });
  assert.equal(fresh.recordReads, 20);
  assert.deepEqual(p1.revisions.map((r) => r.id), first.revisions.map((r) => r.id));
  const truth = revs.map((r) => r.id).reverse();
  assert.deepEqual(p1.revisions.map((r) => r.id), truth.slice(0, 20));
  assert.equal(p1.next, truth[19]);
  const p2 = await fresh.page({ limit: 20, before: p1.next!.slice(0, 12) });
  assert.deepEqual(p2.revisions.map((r) => r.id), truth.slice(20, 40));
  assert.equal(fresh.recordReads, 40);
  const last = await fresh.page({ limit: 20, before: truth[9_990] });
  assert.deepEqual(last.revisions.map((r) => r.id), truth.slice(9_991));
  assert.equal(last.next, null);
  // A change writes one record and the index, and reads no other record.
  fresh.recordReads = 0;
  await fresh.setState(truth[5_000], 'failed', 'probe');
  assert.equal(fresh.recordReads, 1);
  assert.deepEqual((await fresh.inState('failed')).map((r) => r.id), [truth[5_000]]);
});

test('an index deleted, stale (records added or removed behind its back) or torn is rebuilt, never trusted', async (t) => {
  if (!requireRoot(t)) return;
  const store = await scratchStore();
  for (let i = 0; i < 30; i++) await store.save(synthetic(i));
  assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store));

  // Deleted: rebuilt from the records.
  await unlink(store.indexFile);
  assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store));
  await readFile(store.indexFile); // written back

  // A record added behind its back: only that one is read, and it is listed first.
  const added = synthetic(100);
  await writeBehind(store, [added]);
  store.recordReads = 0;
  const p = await store.page({ limit: 3 });
  assert.equal(p.revisions[0].id, added.id);
  assert.equal(store.recordReads, 1 + 3);
  // One removed behind its back: gone from the listing, no error.
  const gone = synthetic(7).id;
  await unlink(join(store.dir, `${gone}.yaml`));
  const ids = (await store.page({})).revisions.map((r) => r.id);
  assert.ok(!ids.includes(gone));
  assert.deepEqual(ids, await allFromFiles(store));

  // One added and one removed (same count): still noticed.
  await unlink(join(store.dir, `${synthetic(3).id}.yaml`));
  await writeBehind(store, [synthetic(101)]);
  assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store));

  // Once the directory has been quiet for a while, a listing stamps it into the index and
  // later listings skip listing it; a record added or removed after that is still seen.
  await new Promise((r) => setTimeout(r, 250));
  await store.page({ limit: 1 });
  assert.match(await readFile(store.indexFile, 'utf8'), / dir=\d+:\d+ /);
  const late = synthetic(200);
  await writeBehind(store, [late]);
  assert.equal((await store.page({ limit: 1 })).revisions[0].id, late.id);
  await new Promise((r) => setTimeout(r, 250));
  await store.page({ limit: 1 });
  assert.match(await readFile(store.indexFile, 'utf8'), / dir=\d+:\d+ /);
  await unlink(join(store.dir, `${late.id}.yaml`));
  assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store));

  // Torn or hostile index contents: each is rebuilt, and the listing is right.
  // The header's directory stamp may differ between two good indexes; the rest may not.
  const unstamped = (text: string) => text.replace(/ dir=\S+ /, ' dir= ');
  const good = await readFile(store.indexFile, 'utf8');
  const torn = [
    good.slice(0, Math.floor(good.length / 2)), // cut mid-line
    'garbage\n',
    '',
    good.replace(/healthy|rolled-back/, 'pwned'), // unknown state
    good.replace(/\n[^\n]+\n$/, '\n') + good.split('\n')[1] + '\n', // duplicate, out of order
    good.replace(/ [0-9a-f]{64} /, ` ${'f'.repeat(64)} `), // an id with no record
    `${good}\0`,
  ];
  for (const bad of torn) {
    await writeFile(store.indexFile, bad);
    assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store), `index ${JSON.stringify(bad.slice(0, 60))}`);
    assert.equal(unstamped(await readFile(store.indexFile, 'utf8')), unstamped(good));
  }
});

test('retention keeps named, failed and the newest N, removes the rest, and leaves an index that matches', async (t) => {
  if (!requireRoot(t)) return;
  const store = await scratchStore();
  for (let i = 0; i < 20; i++) await store.save(synthetic(i, i === 2 ? 'failed' : i === 19 ? 'healthy' : 'rolled-back'));
  // A record the index thinks is not failed but is: the record decides.
  const sneaky = synthetic(4);
  await writeBehind(store, [{ ...sneaky, state: 'failed' }]);
  const named = new Set([synthetic(0).id, synthetic(10).id]);
  const removed = await store.prune({ named, keep: 5 });
  const left = new Set(await store.ids());
  const expectKept = [0, 2, 4, 10, 15, 16, 17, 18, 19].map((i) => synthetic(i).id);
  assert.deepEqual([...left].sort(), [...expectKept].sort());
  assert.equal(removed.length, 20 - expectKept.length);
  for (const id of removed) assert.ok(!left.has(id));
  assert.deepEqual((await store.page({})).revisions.map((r) => r.id), await allFromFiles(store));
  // Nothing more to prune: a second run removes nothing.
  assert.deepEqual(await store.prune({ named, keep: 5 }), []);
});

test('ATOMHOST_KEEP_REVISIONS: default 50, a bad value is refused by name', () => {
  assert.equal(keepRevisionsSetting({}), 50);
  assert.equal(keepRevisionsSetting({ ATOMHOST_KEEP_REVISIONS: '7' }), 7);
  for (const bad of ['0', '-1', 'ten', '1e3', '5 ', '9999999']) {
    assert.throws(() => keepRevisionsSetting({ ATOMHOST_KEEP_REVISIONS: bad }), /ATOMHOST_KEEP_REVISIONS/);
  }
});

test('on a real sysroot: paged `atomhost revisions`, pruning at boot, and a failed release stays refused after it', async (t) => {
  if (!requireRoot(t)) return;
  const f = await OsFixture.createDeployed({ versions: ['1.0', '2.0'] });
  t.after(() => f.dispose());
  // The first deployment is the ref's head, 2.0.
  const s0 = await f.cliJson<{ spec: { revision: string } }>('status');
  const base = s0.spec.revision;
  await f.publish('3.0');
  let r = await f.cli('upgrade');
  assert.equal(r.exitCode, 0, r.stderr);
  const bad = (await f.cliJson<{ spec: { revision: string } }>('status')).spec.revision;
  // 3.0 failed its gate: the host went back, the gate marked it, its deployment was cleaned up.
  assert.equal((r = await f.cli('rollback')).exitCode, 0, r.stderr);
  const host = await LocalHost.open(f.sysroot);
  try {
    await host.setRevisionState(bad, 'failed', 'probe http://127.0.0.1:1/ did not answer');
  } finally {
    await host.close();
  }
  assert.equal((r = await f.cli('cleanup', '--rollback')).exitCode, 0, r.stderr);
  assert.equal((await f.ostreeDeployments()).length, 1);
  // Plenty of newer history nothing names.
  const store = new RevisionStore(f.sysroot);
  for (let i = 0; i < 12; i++) await store.save(synthetic(i, 'rolled-back', 2090));

  // Paged listing: pages join into --all, newest first.
  const all = await f.cliJson<Revision[]>('revisions', '--all');
  assert.equal(all.length, 14);
  const page1 = await f.cliJson<Revision[]>('revisions', '--limit', '5');
  const page2 = await f.cliJson<Revision[]>('revisions', '--limit', '5', '--before', page1[4].id.slice(0, 12));
  assert.deepEqual([...page1, ...page2].map((x) => x.id), all.slice(0, 10).map((x) => x.id));
  const text = await f.cli('revisions', '--limit', '5');
  assert.match(text.stdout, new RegExp(`5 of 14; older: atomhost revisions --before ${page1[4].id.slice(0, 12)}`));
  assert.match((await f.cli('revisions', '--limit', 'x')).stderr, /--limit must be a whole number/);
  assert.match((await f.cli('revisions', '--before', 'zzzzzz')).stderr, /not a revision id: zzzzzz/);

  // Boot: a staged record no deployment names was never finalized and is dropped; then
  // retention with N=3 keeps the named base, the failed 3.0 and the 3 newest.
  const unfinalized = synthetic(99, 'staged', 2091);
  await store.save(unfinalized);
  process.env.ATOMHOST_KEEP_REVISIONS = '3';
  t.after(() => delete process.env.ATOMHOST_KEEP_REVISIONS);
  const h2 = await LocalHost.open(f.sysroot);
  try {
    assert.deepEqual(await h2.dropUnfinalized(), [unfinalized.id]);
  } finally {
    await h2.close();
  }
  const kept = (await f.cliJson<Revision[]>('revisions', '--all')).map((x) => x.id);
  assert.deepEqual(new Set(kept), new Set([...all.slice(0, 3).map((x) => x.id), base, bad]));
  assert.equal(kept.length, 5);
  // The update agent still refuses the release that failed.
  r = await f.cli('upgrade');
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, new RegExp(`revision ${bad.slice(0, 12)}, which failed its health checks`));
});
