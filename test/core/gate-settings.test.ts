// The health gate's timing is read in one place (core/health-gate.ts): the defaults, a
// boot given longer than a live change, the environment overriding them, and a value
// that is not a number refused by name instead of becoming a gate that never waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GATE_DEFAULTS, gateSettings, runHealthChecks } from '../../core/health-gate.js';

test('defaults: a boot gets longer than a live change; probes and HTTP are bounded', () => {
  const s = gateSettings({});
  assert.deepEqual(s.deadlineMs, { boot: 120_000, live: 60_000 });
  assert.ok(s.deadlineMs.boot > s.deadlineMs.live);
  assert.equal(s.probeTimeoutMs, 10_000);
  assert.equal(s.httpTimeoutMs, 2_000);
  assert.deepEqual(s, { ...GATE_DEFAULTS, deadlineMs: { ...GATE_DEFAULTS.deadlineMs } });
});

test('ATOMHOST_HEALTH_DEADLINE_MS sets both deadlines; ATOMHOST_PROBE_TIMEOUT_MS the probe timeout', () => {
  const s = gateSettings({ ATOMHOST_HEALTH_DEADLINE_MS: '15000', ATOMHOST_PROBE_TIMEOUT_MS: '2000' });
  assert.deepEqual(s.deadlineMs, { boot: 15_000, live: 15_000 });
  assert.equal(s.probeTimeoutMs, 2000);
  // The defaults object is not changed by a caller's settings.
  assert.equal(GATE_DEFAULTS.deadlineMs.boot, 120_000);
});

test('a setting that is not a whole number of milliseconds is refused, naming the variable', () => {
  for (const [name, value] of [['ATOMHOST_HEALTH_DEADLINE_MS', '60s'], ['ATOMHOST_PROBE_TIMEOUT_MS', '-1'], ['ATOMHOST_PROBE_TIMEOUT_MS', '1e9']]) {
    assert.throws(() => gateSettings({ [name]: value }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'AH_ERR_INVALID_ARGUMENT');
      assert.match(err.message, new RegExp(`^${name}="${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": not a whole number`));
      return true;
    });
  }
});

test('ATOMHOST_BOOT_TRIES sets the boots a new revision gets (1 to 9, what GRUB can count down)', () => {
  assert.equal(gateSettings({}).bootTries, 3);
  assert.equal(gateSettings({ ATOMHOST_BOOT_TRIES: '2' }).bootTries, 2);
  for (const value of ['0', '10', 'two', '-1', '2\nboot_success=1']) {
    assert.throws(() => gateSettings({ ATOMHOST_BOOT_TRIES: value }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'AH_ERR_INVALID_ARGUMENT');
      assert.match(err.message, /^ATOMHOST_BOOT_TRIES=".*": not a number of boots from 1 to 9$/);
      return true;
    });
  }
});

test("a command probe is killed at the settings' probe timeout", async () => {
  const settings = { ...gateSettings({}), probeTimeoutMs: 300 };
  const t0 = Date.now();
  const r = await runHealthChecks([{ name: 'slow', kind: 'command', command: ['sleep', '30'] }], null, { deadlineMs: 0, settings });
  assert.ok(Date.now() - t0 < 5000, 'the probe did not run to its end');
  assert.equal(r.ok, false);
  assert.equal(r.reason, 'slow: timed out after 0.3 s (killed with its process group)');
});
