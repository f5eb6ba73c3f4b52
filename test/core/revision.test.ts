import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import YAML from 'yaml';
import { RevisionStore, newRevision, originWithRevision, revisionIdFromOrigin, revisionId, type Revision, type RevisionContent } from '../../core/revision.js';

const content: RevisionContent = {
  os: { osname: 'os', remote: 'origin', refspec: 'origin:os/stable', checksum: 'a'.repeat(64), version: '1', kargs: ['quiet'] },
  containers: {},
  units: {},
  parent: null,
};

test('a revision id is the hash of its content, independent of key order and of its state', () => {
  const a = newRevision(content);
  const reordered: RevisionContent = { parent: null, units: {}, containers: {}, os: { ...content.os } };
  assert.equal(revisionId(reordered), a.id);
  assert.notEqual(revisionId({ ...content, os: { ...content.os, kargs: [] } }), a.id);
  assert.equal(revisionId({ ...a, state: 'failed' } as RevisionContent), a.id);
});

test('the store writes records atomically, refuses tampered ones, resolves prefixes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'revs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new RevisionStore(dir);
  const rev = newRevision(content);
  await store.save(rev);
  assert.deepEqual((await store.get(rev.id)).os, content.os);
  assert.equal((await store.resolve(rev.id.slice(0, 8))).id, rev.id);
  await store.setState(rev.id, 'healthy');
  assert.equal((await store.get(rev.id)).state, 'healthy');
  const file = join(store.dir, `${rev.id}.yaml`);
  await writeFile(file, (await readFile(file, 'utf8')).replace('quiet', 'loud'));
  await assert.rejects(store.get(rev.id), /does not match its id/);
});

test('origins keep their own keys and gain the revision', () => {
  const o = originWithRevision('[origin]\nrefspec=origin:os/stable\n[rpmostree]\nfoo=bar\n', 'b'.repeat(64));
  assert.match(o, /refspec=origin:os\/stable/);
  assert.match(o, /foo=bar/);
  assert.equal(revisionIdFromOrigin(o), 'b'.repeat(64));
});

test('records are JSON that YAML reads alike; block-YAML records of earlier versions still load and are rewritten as JSON', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'revs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new RevisionStore(dir);
  const rev = newRevision({ ...content, os: { ...content.os, version: '1.10', kargs: ['quiet', 'console=ttyS0,115200', 'x="a b"'] } });
  await store.save(rev);
  const file = join(store.dir, `${rev.id}.yaml`);
  const text = await readFile(file, 'utf8');
  assert.deepEqual(JSON.parse(text), rev, 'the record is JSON');
  assert.deepEqual(YAML.parse(text), rev, 'and reads the same as YAML (what an earlier version booted by a rollback uses)');
  // As an earlier version wrote it (block YAML), with a key order of its own.
  const old = newRevision({ ...content, os: { ...content.os, version: '0.9' } }, 'healthy');
  const oldFile = join(store.dir, `${old.id}.yaml`);
  await writeFile(oldFile, YAML.stringify(old));
  assert.deepEqual(await store.get(old.id), old);
  await store.setState(old.id, 'rolled-back', 'rolled back to x');
  assert.deepEqual(JSON.parse(await readFile(oldFile, 'utf8')), { ...old, state: 'rolled-back', reason: 'rolled back to x' });
  // Bad text is named, with the file.
  await writeFile(oldFile, '{ "id": [unclosed');
  await assert.rejects(store.get(old.id), (err: Error) => err.message.includes(oldFile) && /cannot be read/.test(err.message));
});

test('index lines edited in place (a state change, a newer record) agree with an index rebuilt from the records', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'revs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new RevisionStore(dir);
  const revs: Revision[] = [];
  for (let i = 0; i < 5; i++) {
    const r = newRevision({ ...content, os: { ...content.os, version: String(i) } });
    r.created = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
    await store.save(r);
    revs.push(r);
  }
  await store.setState(revs[1].id, 'failed', 'health checks failed');
  await store.setState(revs[4].id, 'healthy');
  // An older record saved after newer ones (not the newest line): the index is rebuilt, in order.
  const early = newRevision({ ...content, os: { ...content.os, version: 'early' } });
  early.created = new Date(Date.UTC(2025, 0, 1)).toISOString();
  await store.save(early);
  const edited = await readFile(store.indexFile, 'utf8');
  const listed = (await store.entries()).map((e) => `${e.id} ${e.state}`);
  assert.deepEqual(listed, [early, ...revs].map((r) => `${r.id} ${r.id === revs[1].id ? 'failed' : r.id === revs[4].id ? 'healthy' : 'deployed'}`));
  await rm(store.indexFile);
  assert.deepEqual((await new RevisionStore(dir).entries()).map((e) => `${e.id} ${e.state}`), listed, 'a rebuilt index says the same');
  // Byte for byte, but for the directory stamp a rebuild may add.
  assert.equal((await readFile(store.indexFile, 'utf8')).replace(/ dir=\S+/, ''), edited.replace(/ dir=\S+/, ''));
  assert.deepEqual((await store.inState('failed')).map((r) => r.id), [revs[1].id]);
});
