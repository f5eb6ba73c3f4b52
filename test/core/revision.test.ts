import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { RevisionStore, newRevision, originWithRevision, revisionIdFromOrigin, revisionId, type RevisionContent } from '../../core/revision.js';

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
