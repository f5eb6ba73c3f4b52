// A running upgrade can be cancelled: the pull stops, nothing is deployed, and the next
// upgrade completes normally.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { LocalHost } from '../../core/local-host.js';
import { AtomhostError } from '../../core/errors.js';
import type { ProgressEvent } from '../../core/progress.js';

let f: OsFixture;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  // Many distinct objects so that the pull is still running when we cancel it.
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`usr/share/many/f${i}`] = `file ${i} of 2.0\n`.repeat(50);
  await f.publish('2.0', { files });
});
after(async () => f?.dispose());

test('cancelling an upgrade mid-pull deploys nothing and the next upgrade works', async (t) => {
  if (!requireRoot(t)) return;
  const before = await f.snapshot();
  const host = await LocalHost.open(f.sysroot);
  f.server.setDelay(50); // a slow network: the pull is still running when we cancel it
  const abort = new AbortController();
  const events: ProgressEvent[] = [];
  const err = await host
    .upgrade({
      signal: abort.signal,
      progress: (e) => {
        events.push(e);
        if (e.type === 'download' && e.fetched > 2) abort.abort();
      },
    })
    .then(() => null, (e: unknown) => e);
  assert.ok(err instanceof AtomhostError, String(err));
  assert.equal(err.code, 'AH_ERR_CANCELLED');
  assert.ok(events.some((e) => e.type === 'download'), 'pull progress was reported');
  assert.deepEqual(await f.snapshot(), before);
  f.server.setDelay(0);
  const r = await host.upgrade();
  assert.equal(r.changed, true);
  assert.equal((await f.ostreeDeployments()).length, 2);
});
