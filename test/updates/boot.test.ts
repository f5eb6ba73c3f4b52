// The update agent after a reboot with no command run: a test host whose atomhostd is NOT
// enabled (it is D-Bus activated) but units/atomhost-updates.path is, as the composed image
// has it. A real etcd and the real FleetLock server run on this machine (the test host shares
// its network). The agent waits for the slot another node holds, takes it when it is free,
// drains (a pre-reboot hook), reboots; after the boot the path unit starts the agent, the
// gate passes, the post-healthy hook runs once, and the slot is given back: first with the
// lock server down (the agent tries again every 30 s), then once it is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireCommand, requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { makeHostDisk } from '../../sandbox/host-disk.js';
import { startEtcd, type EtcdCluster } from '../../sandbox/etcd.js';
import { MESSAGE_IDS } from '../../agent/journal.js';
import { EtcdClient } from '../../fleet/etcd.js';
import { createFleetLockServer, type FleetLockServer } from '../../fleet/server.js';
import { holdersInEtcd, lockBody, post } from '../fleet/helpers.js';
import type { UpdatesReport } from '../../core/updates/state.js';
import type { HostStatus } from '../../core/host-api.js';

const INSIDE = '/var/lib/atomhost-updates-test';
const SYSROOT = `${INSIDE}/sysroot`;
const DROPIN = '/etc/atomhost/updates.d/50-fleet.yaml';
const DRAINED = '/var/lib/atomhost-drained';
const UNCORDONS = '/var/lib/atomhost-uncordons';
let th: TestHost;
let scratch: Scratch;
let server: StaticServer;
let etcd: EtcdCluster | undefined;
let lock: FleetLockServer | null = null;
let lockPort = 0;
let repo = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function serveLock(port: number): Promise<void> {
  lock = createFleetLockServer({ etcd: new EtcdClient(etcd!.clientUrls, { attemptTimeoutMs: 1500 }), slots: 1, lockTtlSeconds: 3600, log: () => {} });
  await new Promise<void>((r) => lock!.listen(port, '127.0.0.1', r));
  lockPort = (lock.address() as { port: number }).port;
}
const holders = () => holdersInEtcd(etcd!.clientUrls, 'workers');
async function publish(version: string): Promise<void> {
  const tree = join(scratch.dir, 'tree');
  await buildOsTree(tree, { osname: 'testos', version, files: { 'usr/share/testos/VERSION': `${version}\n` } });
  await commitTree(repo, 'testos/stable', tree, version);
}
/**
 * The journal of atomhostd's run in this boot (a test host shares the machine's boot id, so
 * `journalctl -b` would show both boots): its systemd invocation, empty before it started.
 */
const journal = async (...match: string[]) => {
  const id = (await th.exec('systemctl', ['show', '-p', 'InvocationID', '--value', 'atomhostd.service'])).stdout.trim();
  return id ? (await th.exec('journalctl', [`_SYSTEMD_INVOCATION_ID=${id}`, ...match, '--no-pager'])).stdout : '';
};
/** The agent's states in this boot's journal (journalctl: asking it does not start the agent). */
const journalStates = async () =>
  (await journal(`MESSAGE_ID=${MESSAGE_IDS.updateState}`, '-o', 'json')).trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Record<string, string>).ATOMHOST_UPDATE_STATE);
const report = async () => JSON.parse((await th.exec('atomhost', ['--json', 'updates', 'status'])).stdout) as UpdatesReport;

before(async () => {
  // Without root or etcd the tests below skip (or fail under CI=true) with the reason.
  if (process.getuid?.() !== 0 || (await execa('sh', ['-c', 'command -v etcd'], { reject: false })).exitCode !== 0) return;
  scratch = await makeScratch('atomhost-updates-boot-');
  repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await publish('1.0');
  server = await serveDirectory(repo);
  etcd = await startEtcd(1);
  await serveLock(0);
  const disk = join(scratch.dir, 'disk');
  await makeHostDisk(disk, { osname: 'testos', ref: 'testos/stable', repoUrl: server.url });
  th = await TestHost.boot({
    binds: [[disk, INSIDE]],
    enable: ['atomhost-updates.path', 'atomhost-reconcile.service', 'atomhost-health.service'],
    agentEnv: { ATOMHOST_SYSROOT: SYSROOT, ATOMHOST_HEALTH_DEADLINE_MS: '20000' },
  });
});

after(async () => {
  await th?.shutdown();
  await lock?.stop();
  await etcd?.stop();
  await server?.close();
  await scratch?.dispose();
});

test('without a policy the agent is not started at boot; the first drop-in starts it (atomhost-updates.path)', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1') || !(await requireCommand(t, 'etcd'))) return;
  assert.equal((await th.exec('systemctl', ['is-active', 'atomhostd.service'])).stdout.trim(), 'inactive', 'nothing asked for the agent');
  assert.equal((await th.exec('systemctl', ['is-active', 'atomhost-updates.path'])).stdout.trim(), 'active', 'the path unit watches for a policy');
  // Another node holds the group's only slot.
  assert.equal((await post(`http://127.0.0.1:${lockPort}/v1/pre-reboot`, lockBody('other-node', 'workers'))).status, 200);
  await publish('2.0');
  await th.sh(
    `mkdir -p /etc/atomhost/updates.d && cat > ${DROPIN} <<'EOF'\nstrategy: fleet_lock\ninterval: 10s\njitter: 1s\n` +
      `fleet_lock: { base_url: "http://127.0.0.1:${lockPort}", group: workers }\nhooks:\n` +
      `  pre_reboot: [{ argv: [/bin/sh, -c, "date > ${DRAINED}"], timeout: 30s }]\n` +
      `  post_healthy: [{ argv: [/bin/sh, -c, "echo uncordon >> ${UNCORDONS}"], timeout: 30s }]\nEOF`,
  );
  let active = '';
  for (let i = 0; i < 40 && active !== 'active'; i++) {
    await sleep(250);
    active = (await th.exec('systemctl', ['is-active', 'atomhostd.service'])).stdout.trim();
  }
  assert.equal(active, 'active', 'the drop-in started the agent');
});

test('fleet_lock: waits for the slot, drains, reboots; after the boot, with no command, the slot comes back (retried while the server is down)', async (t) => {
  if (!requireRoot(t) || !(await requireCommand(t, 'etcd'))) return;
  const r = JSON.parse((await th.exec('atomhost', ['--json', 'updates', 'check'])).stdout) as UpdatesReport;
  assert.equal(r.state, 'waiting', JSON.stringify(r));
  assert.equal(r.reason, 'no reboot slot free in fleet lock group workers');
  assert.equal(r.target?.version, '2.0');
  assert.equal((await th.exec('test', ['-e', DRAINED])).exitCode, 1, 'no drain without the slot');

  // The other node is done: the agent's own timer (10 s) takes the slot, drains and reboots.
  assert.equal((await post(`http://127.0.0.1:${lockPort}/v1/steady-state`, lockBody('other-node', 'workers'))).status, 200);
  const pid = th.pid;
  let gone = false;
  for (let i = 0; i < 240 && !gone; i++) {
    try {
      process.kill(pid, 0);
      await sleep(250);
    } catch {
      gone = true;
    }
  }
  assert.ok(gone, 'the test host rebooted by itself within 60 s');
  const held = await holders();
  assert.equal(held.length, 1, 'this node holds the slot across the reboot');
  assert.notEqual(held[0], 'other-node');
  // The lock server goes down before the boot: the agent must try again.
  await lock!.stop();
  lock = null;
  th = await th.reboot();

  // No atomhost command from here until the journal shows the agent waiting to give the slot back.
  let states: string[] = [];
  for (let i = 0; i < 240 && !states.includes('waiting'); i++) {
    await sleep(500);
    states = await journalStates();
  }
  assert.ok(states.includes('waiting'), `the agent ran after the boot, started by the path unit, and waits for the server: ${states.join(' ')}`);
  const waiting = await journal(`MESSAGE_ID=${MESSAGE_IDS.updateState}`, 'ATOMHOST_UPDATE_STATE=waiting', '-o', 'cat');
  assert.match(waiting, /^update agent: waiting: revision [0-9a-f]{12} \(2\.0\) is healthy; giving the reboot slot back to http:\/\/127\.0\.0\.1:\d+ \(group workers\) failed: .+; trying again every 30 s$/m);
  assert.deepEqual(await holders(), held, 'the slot is still held while the server is down');
  assert.equal((await th.exec('cat', [UNCORDONS])).stdout, 'uncordon');

  // The server comes back on the same address: within the 30 s retry the slot is free, again with no command.
  await serveLock(lockPort);
  let now: string[] = held;
  for (let i = 0; i < 90 && now.length; i++) {
    await sleep(500);
    now = await holders();
  }
  assert.deepEqual(now, [], 'the slot was given back by the retry');
  const steady = await journal(`MESSAGE_ID=${MESSAGE_IDS.updateState}`, 'ATOMHOST_UPDATE_STATE=steady', '-o', 'cat');
  assert.match(steady, /^update agent: steady: revision [0-9a-f]{12} \(2\.0\) is healthy; fleet lock released$/m);

  const after = await report();
  assert.equal(after.state, 'steady', JSON.stringify(after));
  assert.equal((await th.exec('cat', [UNCORDONS])).stdout, 'uncordon', 'the post-healthy hook ran once');
  assert.equal((await th.exec('test', ['-s', DRAINED])).exitCode, 0, 'the pre-reboot hook ran before the reboot');
  const s = JSON.parse((await th.exec('atomhost', ['status', '--json'])).stdout) as HostStatus;
  assert.equal(s.status.deployments[0].version, '2.0');
  assert.equal(s.status.deployments[0].revision?.state, 'healthy');
  assert.match((await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.updateReboot}`, '-o', 'cat', '--no-pager'])).stdout, /update agent: rebooting into revision [0-9a-f]{12}/);
  assert.deepEqual((await journalStates()).filter((s) => s === 'rebooting'), [], 'no second reboot');
});
