// The health gate on a real sysroot: pass marks healthy; failure falls back to the newest
// healthy revision by reordering the boot entries; boot counting is bounded and never loops.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { LocalHost } from '../../core/local-host.js';
import { applyFallback, countBoot, judge } from '../../core/health-gate.js';

let f: OsFixture;
let host: LocalHost;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  host = await LocalHost.open(f.sysroot);
});
after(async () => f?.dispose());

test('a passing report marks the revision healthy', async (t) => {
  if (!requireRoot(t)) return;
  const d = await judge(host, { ok: true, results: [], reason: null });
  assert.equal(d?.action, 'healthy');
  assert.equal((await host.defaultRevision())?.state, 'healthy');
});

test('a failing new revision falls back to the healthy one: boot order swapped, reason kept', async (t) => {
  if (!requireRoot(t)) return;
  const good = (await host.defaultRevision())!;
  await f.publish('2.0');
  await host.upgrade();
  const bad = (await host.defaultRevision())!;
  assert.notEqual(bad.id, good.id);
  const d = await judge(host, { ok: false, results: [], reason: 'kubelet: HTTP 500' });
  assert.equal(d?.action, 'fall-back');
  if (d?.action !== 'fall-back') return;
  assert.equal(d.to, good.id);
  const msg = await applyFallback(host, d);
  assert.match(msg, /failed its health checks \(kubelet: HTTP 500\)/);
  assert.equal((await host.defaultRevision())?.id, good.id);
  assert.match((await f.bootMenu())[0].title, /1\.0/, 'the bootloader default is the healthy revision');
  const rec = await host.revisions.get(bad.id);
  assert.equal(rec.state, 'failed');
  assert.equal(rec.reason, 'kubelet: HTTP 500');
});

test('an upgrade does not pick a failed revision again', async (t) => {
  if (!requireRoot(t)) return;
  const before = await f.snapshot();
  for (const args of [['upgrade'], ['upgrade', '--check']]) {
    const r = await f.cli(...args);
    assert.equal(r.exitCode, 77, r.stderr);
    assert.match(r.stderr, /the newest release is revision [0-9a-f]{12}, which failed its health checks \(kubelet: HTTP 500\); atomhost does not pick it again/);
  }
  assert.deepEqual(await f.snapshot(), before, 'nothing changed');
});

test('boot counting gives a new revision a bounded number of boots, then falls back once', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('3.0');
  await host.upgrade();
  const fresh = (await host.defaultRevision())!;
  for (let i = 1; i <= 2; i++) assert.deepEqual(await countBoot(host, 2), { action: 'wait', revision: fresh.id, attempts: i });
  const d = await countBoot(host, 2);
  assert.equal(d?.action, 'fall-back');
  if (d?.action === 'fall-back') await applyFallback(host, d);
  assert.equal((await host.revisions.get(fresh.id)).state, 'failed');
  // On the healthy fallback, counting does nothing more: no loop.
  assert.equal((await countBoot(host, 2))?.action, 'healthy');
  assert.equal((await countBoot(host, 2))?.action, 'healthy');
});

test('with no healthy revision left the gate gives up instead of bouncing', async (t) => {
  if (!requireRoot(t)) return;
  const cur = (await host.defaultRevision())!;
  await host.revisions.setState(cur.id, 'deployed');
  const d = await judge(host, { ok: false, results: [], reason: 'engine down' });
  assert.equal(d?.action, 'give-up');
  assert.match((d as { reason: string }).reason, /no healthy revision to fall back to/);
});
