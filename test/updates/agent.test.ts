// The update agent's state machine in process, on a real sysroot (tmpfs) with a real
// repository served over HTTP: staging is the host's own upgrade. The reboot is recorded
// (the test host file reboots for real), and the fleet lock is a "fake lock" in process
// (the FleetLock server's own tests run the real one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireRoot } from '../helpers/capability.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { LocalHost } from '../../core/local-host.js';
import { UpdateAgent, type RebootLock } from '../../core/updates/agent.js';
import { loadPersisted, stateFile } from '../../core/updates/state.js';

let f: OsFixture;
let host: LocalHost;
let dir = '';
const logs: string[] = [];

class FakeLock implements RebootLock {
  grant = false;
  held = false;
  calls: string[] = [];
  async preReboot(): Promise<boolean> {
    this.calls.push('pre-reboot');
    if (this.grant) this.held = true;
    return this.grant;
  }
  async steadyState(): Promise<void> {
    this.calls.push('steady-state');
    this.held = false;
  }
}

function agent(lock: RebootLock | null, reboots: string[], now?: Date): UpdateAgent {
  return new UpdateAgent({
    host,
    configDir: dir,
    transaction: (_title, fn) => fn({}),
    reboot: async () => void reboots.push('reboot'),
    lock: lock ? async () => lock : undefined,
    log: (_l, id, m) => void logs.push(`${id}: ${m}`),
    now: now ? () => now : undefined,
  });
}

async function policy(text: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, '50-test.yaml'), text);
}

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  host = await LocalHost.open(f.sysroot);
  dir = join(f.scratch.dir, 'updates.d');
});
after(async () => {
  await host?.close();
  await f?.dispose();
});

test('no policy at all: the agent is disabled and changes nothing', async (t) => {
  if (!requireRoot(t)) return;
  await rm(dir, { recursive: true, force: true });
  await f.publish('2.0');
  const before = await f.snapshot();
  const reboots: string[] = [];
  const r = await agent(null, reboots).check();
  assert.equal(r.state, 'disabled');
  assert.equal(r.reason, `no update policy in ${dir}`);
  assert.deepEqual(reboots, []);
  assert.deepEqual(await f.snapshot(), before);
});

test('invalid policy: the error state names the file and key; nothing is staged or rebooted', async (t) => {
  if (!requireRoot(t)) return;
  await policy('strategy: immediate\ninterval: often\n');
  const before = await f.snapshot();
  const reboots: string[] = [];
  const r = await agent(null, reboots).check();
  assert.equal(r.state, 'error');
  assert.match(r.reason ?? '', new RegExp(`^invalid update policy: ${join(dir, '50-test.yaml')}: interval: "often" must be a duration`));
  assert.deepEqual(reboots, []);
  assert.deepEqual(await f.snapshot(), before);
});

test('paused: a check does nothing, across a restart of the agent', async (t) => {
  if (!requireRoot(t)) return;
  await policy('strategy: immediate\n');
  const before = await f.snapshot();
  const reboots: string[] = [];
  assert.equal((await agent(null, reboots).pause()).state, 'paused');
  const r = await agent(null, reboots).check();
  assert.equal(r.state, 'paused');
  assert.equal(r.paused, true);
  assert.deepEqual(reboots, []);
  assert.deepEqual(await f.snapshot(), before);
  const a = agent(null, reboots);
  await a.check();
  await a.resume().then((x) => assert.equal(x.paused, false));
  a.stop();
});

test('periodic outside its window: stages, then waits for the window without rebooting', async (t) => {
  if (!requireRoot(t)) return;
  // Reset what resume above did: it ran a cycle with immediate and rebooted into 2.0 ("recorded").
  await rm(join(f.sysroot, 'ostree', 'atomhost', 'updates.json'), { force: true });
  await f.publish('3.0');
  await policy('strategy: periodic\nperiodic:\n  time_zone: Europe/Berlin\n  windows:\n    - { days: [Sat], start_time: "22:00", length_minutes: 60 }\n');
  const reboots: string[] = [];
  const wed = new Date('2026-11-25T10:00:00Z');
  const r = await agent(null, reboots, wed).check();
  assert.equal(r.state, 'waiting');
  assert.equal(r.target?.version, '3.0');
  assert.match(r.reason ?? '', /^outside the maintenance window \(next opens 2026-11-28T21:00:00\.000Z, Europe\/Berlin\)/);
  assert.deepEqual(reboots, []);
  const st = await f.cliJson<{ status: { deployments: { version: string }[] } }>('status');
  assert.equal(st.status.deployments[0].version, '3.0', 'staged: the default deployment');
  // In the window, the same staged update goes on to the reboot without staging again.
  const sat = new Date('2026-11-28T21:30:00Z');
  const r2 = await agent(null, reboots, sat).check();
  assert.equal(r2.state, 'rebooting');
  assert.deepEqual(reboots, ['reboot']);
  assert.equal((await loadPersisted(f.sysroot)).rebootingInto?.version, '3.0');
});

test('fleet_lock with a fake lock: waits for a slot, drains, reboots, and releases only after the gate passed', async (t) => {
  if (!requireRoot(t)) return;
  // The "boot" into 3.0: its gate passed.
  const boot = await loadPersisted(f.sysroot);
  await host.setRevisionState(boot.rebootingInto!.revision, 'healthy');
  await rm(join(f.sysroot, 'ostree', 'atomhost', 'updates.json'), { force: true });
  await f.publish('4.0');
  const marks = join(f.scratch.dir, 'hooks.log');
  await policy(
    `strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9", group: workers }\nhooks:\n` +
      `  pre_reboot: [{ argv: [/bin/sh, -c, "echo drain >> ${marks}"], timeout: 5s }]\n` +
      `  post_healthy: [{ argv: [/bin/sh, -c, "echo uncordon >> ${marks}"], timeout: 5s }]\n`,
  );
  const lock = new FakeLock();
  const reboots: string[] = [];
  let r = await agent(lock, reboots).check();
  assert.equal(r.state, 'waiting');
  assert.equal(r.reason, 'no reboot slot free in fleet lock group workers');
  assert.deepEqual(reboots, []);
  await assert.rejects(readFile(marks, 'utf8'), 'no drain without the lock');

  lock.grant = true;
  r = await agent(lock, reboots).check();
  assert.equal(r.state, 'rebooting');
  assert.deepEqual(reboots, ['reboot']);
  assert.equal(await readFile(marks, 'utf8'), 'drain\n');
  assert.equal(lock.held, true);
  const into = (await loadPersisted(f.sysroot)).rebootingInto!;
  assert.equal(into.version, '4.0');

  // After the "reboot" (a new agent): the gate has not spoken yet, so the slot is kept.
  r = await agent(lock, reboots).check();
  assert.equal(r.state, 'gating');
  assert.equal(lock.held, true, 'the slot is held while the gate runs');
  await host.setRevisionState(into.revision, 'healthy');
  r = await agent(lock, reboots).check();
  assert.equal(r.state, 'steady');
  assert.match(r.reason ?? '', /no update on origin:testos\/x86_64\/stable/);
  assert.equal(lock.held, false);
  // The first agent started on the healthy 3.0 (and gave back any slot); the later ones on an unbooted 4.0 did not.
  assert.deepEqual(lock.calls, ['steady-state', 'pre-reboot', 'pre-reboot', 'steady-state']);
  assert.equal(await readFile(marks, 'utf8'), 'drain\nuncordon\n');
  assert.ok(logs.some((l) => /^updateState: update agent: steady: revision [0-9a-f]{12} \(4\.0\) is healthy; fleet lock released/.test(l)), logs.join('\n'));
});

test('fleet_lock with a fake lock: at start on a healthy revision, a slot still held is given back', async (t) => {
  if (!requireRoot(t)) return;
  await policy(`strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9" }\nenabled: false\n`);
  const lock = new FakeLock();
  lock.held = true; // granted before the daemon stopped, never rebooted
  const a = agent(lock, []);
  assert.equal((await a.check()).state, 'disabled');
  assert.deepEqual(lock.calls, ['steady-state']);
  assert.equal(lock.held, false);
  await a.check();
  assert.deepEqual(lock.calls, ['steady-state'], 'once, at start');
});

test('fleet_lock with a fake lock: a failing pre-reboot hook keeps the node up and gives the slot back', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('5.0');
  await policy(`strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9" }\nhooks:\n  pre_reboot: [{ argv: [/bin/sh, -c, "echo cannot evict pod web-1; exit 3"], timeout: 5s }]\n`);
  const lock = new FakeLock();
  lock.grant = true;
  const reboots: string[] = [];
  const r = await agent(lock, reboots).check();
  assert.equal(r.state, 'waiting');
  assert.equal(r.reason, 'pre-reboot hook ["/bin/sh","-c","echo cannot evict pod web-1; exit 3"] exit 3: cannot evict pod web-1; not rebooting (tried again at the next check)');
  assert.deepEqual(reboots, []);
  assert.equal(lock.held, false);
  assert.deepEqual(lock.calls, ['steady-state', 'pre-reboot', 'steady-state'], 'at start on the healthy 4.0, then the grant and the release after the hook failed');
  // A hook that hangs is killed at its timeout, with the same outcome.
  await policy(`strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9" }\nhooks:\n  pre_reboot: [{ argv: [/bin/sleep, "60"], timeout: 300ms }]\n`);
  const r2 = await agent(lock, reboots).check();
  assert.match(r2.reason ?? '', /^pre-reboot hook \["\/bin\/sleep","60"\] timed out after 300 ms; not rebooting/);
  assert.deepEqual(reboots, []);
});

test('fleet_lock with a fake lock: a revision that fails its gate falls back, releases, and is not taken again', async (t) => {
  if (!requireRoot(t)) return;
  await policy(`strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9" }\n`);
  const lock = new FakeLock();
  lock.grant = true;
  const reboots: string[] = [];
  assert.equal((await agent(lock, reboots).check()).state, 'rebooting');
  const into = (await loadPersisted(f.sysroot)).rebootingInto!;
  assert.equal(into.version, '5.0');
  // The boot of 5.0 fails its gate: the gate marks it failed and puts 4.0 back (as health-gate does).
  await host.setRevisionState(into.revision, 'failed', 'kubelet probe failed');
  await host.rollback();
  const r = await agent(lock, reboots).check();
  assert.equal(lock.held, false, `released after the fallback: ${JSON.stringify(r)}`);
  assert.match(r.lastFailure ?? '', /^revision [0-9a-f]{12} \(5\.0\) failed its health gate \(.+\); running revision [0-9a-f]{12}$/);
  assert.equal(r.state, 'steady');
  assert.match(r.reason ?? '', /^5\.0 failed its health gate on this host before; not taken again$/);
  assert.deepEqual(reboots, ['reboot'], 'no second reboot into the failed release');
});

test('a graph source: the agent deploys the chosen node\'s commit (a graph served over HTTP)', async (t) => {
  if (!requireRoot(t)) return;
  const { createServer } = await import('node:http');
  const cur = (await f.cliJson<{ status: { deployments: { checksum: string; version: string }[] } }>('status')).status.deployments[0];
  const six = await f.publish('6.0');
  await f.publish('7.0'); // the ref moves on: the graph, not the ref, decides
  const graph = { nodes: [{ version: cur.version, payload: cur.checksum }, { version: '6.0', payload: six }], edges: [[0, 1]] };
  const server = createServer((_req, res) => res.end(JSON.stringify(graph)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  await policy(`strategy: immediate\ngraph: { url: "http://127.0.0.1:${port}", stream: stable, rollout_wariness: 0 }\n`);
  const reboots: string[] = [];
  const r = await agent(null, reboots).check();
  assert.equal(r.state, 'rebooting', JSON.stringify(r));
  assert.equal(r.source, 'graph');
  assert.deepEqual([r.target?.version, r.target?.checksum], ['6.0', six]);
  const d = (await f.cliJson<{ status: { deployments: { checksum: string; version: string }[] } }>('status')).status.deployments[0];
  assert.deepEqual([d.version, d.checksum], ['6.0', six], 'the default deployment is the graph\'s payload, not the ref\'s 7.0');
  assert.deepEqual(reboots, ['reboot']);
});

test('the timer: the next check comes after the interval plus a jitter within the policy\'s bound, different per node', async (t) => {
  if (!requireRoot(t)) return;
  await policy('enabled: false\ninterval: 1h\njitter: 10m\n');
  await rm(stateFile(host.sysroot.path), { force: true }); // no update in flight: the policy's timer applies
  const now = new Date('2026-12-04T12:00:00Z');
  const offsets: number[] = [];
  for (let i = 0; i < 20; i++) {
    const a = agent(null, [], now);
    a.start(3_600_000);
    try {
      await a.check();
      offsets.push(Date.parse(a.report().nextCheck ?? '') - now.getTime());
    } finally {
      a.stop();
    }
  }
  for (const o of offsets) assert.ok(o >= 3_600_000 && o <= 4_200_000, `next check ${o} ms after the last is within 1h..1h10m`);
  // 20 draws from 600,001 values: equal ones would mean no jitter (or a fixed seed).
  assert.ok(new Set(offsets).size >= 15, `spread over the jitter window: ${offsets.join(', ')}`);
});

class FlakyLock extends FakeLock {
  down = true;
  override async steadyState(): Promise<void> {
    this.calls.push('steady-state');
    if (this.down) throw new Error('fleet lock http://127.0.0.1:9/v1/steady-state: connect ECONNREFUSED 127.0.0.1:9');
    this.held = false;
  }
}

test('fleet_lock with a fake lock: after a healthy boot, an unreachable lock server is asked again every 30 s; the post-healthy hooks run once', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('8.0');
  const marks = join(f.scratch.dir, 'uncordon.log');
  await policy(`strategy: fleet_lock\nfleet_lock: { base_url: "http://127.0.0.1:9", group: workers }\nhooks:\n  post_healthy: [{ argv: [/bin/sh, -c, "echo uncordon >> ${marks}"], timeout: 5s }]\n`);
  const lock = new FlakyLock();
  lock.down = false;
  lock.grant = true;
  const reboots: string[] = [];
  assert.equal((await agent(lock, reboots).check()).state, 'rebooting');
  const into = (await loadPersisted(f.sysroot)).rebootingInto!;
  assert.equal(into.version, '8.0');
  await host.setRevisionState(into.revision, 'healthy');

  // The "boot" into 8.0, and the lock server is down.
  lock.down = true;
  const now = new Date('2026-12-05T06:00:00Z');
  const a = agent(lock, reboots, now);
  a.start(3_600_000);
  try {
    const r = await a.check();
    assert.equal(r.state, 'waiting', JSON.stringify(r));
    assert.match(r.reason ?? '', /^revision [0-9a-f]{12} \(8\.0\) is healthy; giving the reboot slot back to http:\/\/127\.0\.0\.1:9 \(group workers\) failed: .*ECONNREFUSED.*; trying again every 30 s$/);
    assert.equal(Date.parse(a.report().nextCheck ?? '') - now.getTime(), 30_000, 'the next try in 30 s, not after the policy interval');
    assert.equal(lock.held, true, 'the server still has this node as the holder');
    assert.equal((await a.check()).state, 'waiting');
  } finally {
    a.stop();
  }
  // A restarted daemon tries again too, without running the hooks again.
  assert.equal((await agent(lock, reboots).check()).state, 'waiting');
  assert.equal(await readFile(marks, 'utf8'), 'uncordon\n', 'the post-healthy hook ran once');
  assert.equal((await loadPersisted(f.sysroot)).rebootingInto, null);

  lock.down = false;
  const r = await agent(lock, reboots).check();
  assert.equal(lock.held, false, 'released once the server answers');
  assert.equal(r.state, 'steady', JSON.stringify(r));
  assert.equal((await loadPersisted(f.sysroot)).releasePending, null);
  assert.ok(logs.some((l) => /^updateState: update agent: steady: revision [0-9a-f]{12} \(8\.0\) is healthy; fleet lock released$/.test(l)), logs.join('\n'));
  assert.equal(await readFile(marks, 'utf8'), 'uncordon\n', 'still once');
  assert.deepEqual(reboots, ['reboot']);
});
