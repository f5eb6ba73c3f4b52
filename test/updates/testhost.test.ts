// The update agent in atomhostd in a test host (real systemd as PID 1, the system bus,
// journald, the daemon started at boot): an invalid policy, pause, a periodic window,
// a failing drain hook, then `immediate`: stage, a reboot asked of systemd, the boot
// into the new revision, its health gate, and steady reported in status, D-Bus and the journal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { makeHostDisk } from '../../sandbox/host-disk.js';
import { MESSAGE_IDS } from '../../agent/journal.js';
import type { UpdatesReport } from '../../core/updates/state.js';
import type { HostStatus } from '../../core/host-api.js';

const INSIDE = '/var/lib/atomhost-updates-test';
const SYSROOT = `${INSIDE}/sysroot`;
const DROPIN = '/etc/atomhost/updates.d/50-test.yaml';
let th: TestHost;
let scratch: Scratch;
let server: StaticServer;
let repo = '';

async function publish(version: string): Promise<void> {
  const tree = join(scratch.dir, 'tree');
  await buildOsTree(tree, { osname: 'testos', version, files: { 'usr/share/testos/VERSION': `${version}\n` } });
  await commitTree(repo, 'testos/stable', tree, version);
}
const policy = (text: string) => th.sh(`mkdir -p /etc/atomhost/updates.d && cat > ${DROPIN} <<'EOF'\n${text}EOF`);
const updates = async (verb: string, user?: string) => {
  const r = await th.exec('atomhost', ['--json', 'updates', verb], { user });
  return { ...r, report: r.stdout ? (JSON.parse(r.stdout) as UpdatesReport) : null };
};
const versions = async () => (JSON.parse((await th.exec('atomhost', ['status', '--json'])).stdout) as HostStatus).status.deployments.map((d) => d.version);

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('atomhost-updates-th-');
  repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await publish('1.0');
  server = await serveDirectory(repo);
  const disk = join(scratch.dir, 'disk');
  await makeHostDisk(disk, { osname: 'testos', ref: 'testos/stable', repoUrl: server.url });
  th = await TestHost.boot({
    binds: [[disk, INSIDE]],
    enable: ['atomhostd.service', 'atomhost-reconcile.service', 'atomhost-health.service'],
    agentEnv: { ATOMHOST_SYSROOT: SYSROOT, ATOMHOST_HEALTH_DEADLINE_MS: '20000' },
  });
});

after(async () => {
  await th?.shutdown();
  await server?.close();
  await scratch?.dispose();
});

test('an invalid policy: the agent reports it by file and key and changes nothing', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  await publish('2.0');
  await policy('strategy: immediate\nperiodic:\n  time_zone: Atlantis/Capital\n');
  const r = await updates('check');
  assert.equal(r.exitCode, 1, r.stderr);
  assert.equal(r.report?.state, 'error');
  assert.equal(r.report?.reason, `invalid update policy: ${DROPIN}: periodic.time_zone: "Atlantis/Capital" is not an IANA time zone (e.g. Europe/Berlin, UTC)`);
  assert.deepEqual(await versions(), ['1.0']);
  const human = await th.exec('atomhost', ['status']);
  assert.match(human.stdout, /^Updates: error: invalid update policy: /m);
});

test('pause needs root or polkit; a paused agent does nothing', async (t) => {
  if (!requireRoot(t)) return;
  await policy('strategy: immediate\n');
  const nobody = await updates('pause', '65534');
  assert.equal(nobody.exitCode, 4, nobody.stderr);
  assert.match(nobody.stderr, /not authorized: UpdatesPause changes the host/);
  assert.equal((await updates('pause')).report?.state, 'paused');
  const r = await updates('check');
  assert.equal(r.report?.state, 'paused');
  assert.deepEqual(await versions(), ['1.0']);
  const anyone = await updates('status', '65534');
  assert.equal(anyone.report?.paused, true, 'anyone may read the state');
});

test('periodic outside its window: stages 2.0 and waits, without rebooting', async (t) => {
  if (!requireRoot(t)) return;
  // A one-minute window twelve hours from now.
  const w = new Date(Date.now() + 12 * 3600_000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][w.getUTCDay()];
  const hhmm = `${String(w.getUTCHours()).padStart(2, '0')}:${String(w.getUTCMinutes()).padStart(2, '0')}`;
  await policy(`strategy: periodic\nperiodic:\n  time_zone: UTC\n  windows:\n    - { days: [${day}], start_time: "${hhmm}", length_minutes: 1 }\n`);
  const r = await th.exec('atomhost', ['--json', 'updates', 'resume']);
  const report = JSON.parse(r.stdout) as UpdatesReport;
  assert.equal(report.state, 'waiting', r.stdout + r.stderr);
  assert.match(report.reason ?? '', /^outside the maintenance window \(next opens /);
  assert.equal(report.target?.version, '2.0');
  assert.deepEqual((await versions()).slice(0, 2), ['2.0', '1.0'], 'staged: the default, not booted');
  const s = JSON.parse((await th.exec('atomhost', ['status', '--json'])).stdout) as HostStatus;
  assert.equal(s.status.updates?.state, 'waiting', 'status --json carries the agent');
  const dbus = await th.exec('busctl', ['call', '--json=short', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'GetUpdates']);
  assert.match(dbus.stdout, /\\"state\\":\\"waiting\\"/);
});

test('a failing pre-reboot hook keeps the host up and says why', async (t) => {
  if (!requireRoot(t)) return;
  await policy('strategy: immediate\nhooks:\n  pre_reboot:\n    - { argv: [/bin/sh, -c, "echo node has unevictable pods; exit 2"], timeout: 10s }\n');
  const r = await updates('check');
  assert.equal(r.report?.state, 'waiting');
  assert.equal(r.report?.reason, 'pre-reboot hook ["/bin/sh","-c","echo node has unevictable pods; exit 2"] exit 2: node has unevictable pods; not rebooting (tried again at the next check)');
  assert.equal((await th.exec('systemctl', ['is-system-running'])).stdout.trim().match(/running|degraded/)?.length, 1, 'the host is up');
  const j = await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.updateHookFailed}`, '-o', 'cat', '--no-pager']);
  assert.match(j.stdout, /pre-reboot hook .* exit 2: node has unevictable pods; not rebooting/);
  // What a hook printed may hold secrets: a caller who may not change the host sees the state, not the reason.
  const anyone = await updates('status', '65534');
  assert.equal(anyone.report?.state, 'waiting');
  assert.doesNotMatch(anyone.stdout, /unevictable/);
});

test('immediate: reboots into the staged revision through systemd, waits for its gate, reports steady', async (t) => {
  if (!requireRoot(t)) return;
  await policy('strategy: immediate\n');
  const pid = th.pid;
  await th.sh('(atomhost updates check > /dev/null 2>&1 &)');
  // The agent asks systemd for reboot.target: the host's PID 1 ends.
  let gone = false;
  for (let i = 0; i < 240 && !gone; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 250));
    } catch {
      gone = true;
    }
  }
  assert.ok(gone, 'the test host rebooted (its systemd ended) within 60 s');
  th = await th.reboot();
  let r: UpdatesReport | null = null;
  const seen = new Set<string>();
  for (let i = 0; i < 240; i++) {
    r = (await updates('status')).report;
    if (r) seen.add(r.state);
    if (r?.state === 'steady') break;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.equal(r?.state, 'steady', JSON.stringify(r));
  assert.equal(r?.lastFailure, null);
  const steady = await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.updateState}`, 'ATOMHOST_UPDATE_STATE=steady', '-o', 'cat', '--no-pager']);
  assert.match(steady.stdout, /^update agent: steady: revision [0-9a-f]{12} \(2\.0\) is healthy$/m, 'the gate passed before steady was reported');
  const s = JSON.parse((await th.exec('atomhost', ['status', '--json'])).stdout) as HostStatus;
  assert.equal(s.status.deployments[0].version, '2.0');
  assert.equal(s.status.deployments[0].revision?.state, 'healthy');
  const states = (await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.updateState}`, '-o', 'json', '--no-pager'])).stdout.trim().split('\n').map((l) => (JSON.parse(l) as Record<string, string>).ATOMHOST_UPDATE_STATE);
  for (const want of ['error', 'paused', 'checking', 'staged', 'waiting', 'rebooting', 'steady']) assert.ok(states.includes(want), `${want} in the journal: ${states.join(' ')}`);
  const reboot = await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.updateReboot}`, '-o', 'cat', '--no-pager']);
  assert.match(reboot.stdout, /update agent: rebooting into revision [0-9a-f]{12}/);
});
