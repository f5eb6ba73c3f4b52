// atomhostd in a test host: real systemd as PID 1, the real system bus (dbus-daemon),
// the daemon started by D-Bus activation through its unit, a real sysroot, journald.
// The CLI inside talks to it without --sysroot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot } from '../helpers/capability.js';
import { bootSysrootHost, SYSROOT, type SysrootHost } from '../helpers/sysroot-host.js';
import type { TestHost } from '../testhost/testhost.js';
import { MESSAGE_IDS } from '../../agent/journal.js';
import type { HostStatus } from '../../core/host-api.js';

let host: SysrootHost;
let th: TestHost;
const publish = (version: string, files?: Record<string, string>) => host.publish(version, files);

const deployments = async () => (await th.exec('ostree', ['admin', 'status', `--sysroot=${SYSROOT}`])).stdout.split('\n').filter((l) => /^\S?\s+testos [0-9a-f]{64}/.test(l)).map((l) => l.trim().replace(/^\* /, ''));

before(async () => {
  if (process.getuid?.() !== 0) return;
  host = await bootSysrootHost('atomhost-agent-');
  th = host.th;
});

after(async () => {
  await host?.dispose();
});

test('status comes from atomhostd (started by D-Bus activation), for root and for any user', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const r = await th.exec('atomhost', ['status', '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = JSON.parse(r.stdout) as HostStatus;
  assert.equal(s.metadata.sysroot, SYSROOT);
  assert.equal(s.status.transaction, null, 'the daemon says no transaction runs');
  const direct = JSON.parse((await th.exec('atomhost', ['--sysroot', SYSROOT, 'status', '--json'])).stdout) as HostStatus;
  assert.equal(s.spec.revision, direct.spec.revision);
  assert.equal((await th.exec('systemctl', ['is-active', 'atomhostd.service'])).stdout.trim(), 'active');
  assert.match((await th.exec('systemctl', ['show', '-p', 'Slice', 'atomhostd.service'])).stdout, /Slice=atomhost\.slice/);
  const nobody = await th.exec('atomhost', ['status'], { user: '65534' });
  assert.equal(nobody.exitCode, 0, nobody.stderr);
  assert.match(nobody.stdout, /0: testos 1\.0/);
});

test('upgrade and rollback run through the daemon with progress signals', async (t) => {
  if (!requireRoot(t)) return;
  await publish('2.0', { 'usr/share/testos/NEWS': 'two\n' });
  const up = await th.exec('atomhost', ['--progress-json', 'upgrade']);
  assert.equal(up.exitCode, 0, up.stderr);
  assert.match(up.stdout, /Deployed 2\.0 as revision [0-9a-f]{12}/);
  const events = up.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; task?: string });
  assert.ok(events.some((e) => e.type === 'task-begin' && /^Pulling origin:testos\/stable/.test(e.task ?? '')), up.stderr);
  assert.ok(events.some((e) => e.type === 'task-begin' && /^Deploying 2\.0/.test(e.task ?? '')));
  assert.match((await deployments())[0], /\.0$/);
  assert.match((await th.exec('ostree', ['admin', 'status', `--sysroot=${SYSROOT}`])).stdout, /^\s+testos [0-9a-f]{64}\.0\n\s+Version: 2\.0/m);
  const rb = await th.exec('atomhost', ['rollback']);
  assert.equal(rb.exitCode, 0, rb.stderr);
  assert.match((await th.exec('ostree', ['admin', 'status', `--sysroot=${SYSROOT}`])).stdout, /^\s+testos [0-9a-f]{64}\.\d\n\s+Version: 1\.0/m);
  // A client that connects late still gets the last result.
  const last = await th.exec('busctl', ['call', '--json=short', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'GetLastResult']);
  assert.match(last.stdout, /"data":\["[0-9a-f-]{36}",true,".*Moved testos 1\.0/);
});

test('a caller that is neither root nor allowed by polkit is refused and nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  const before = await deployments();
  const r = await th.exec('atomhost', ['rollback'], { user: '65534' });
  assert.equal(r.exitCode, 4, r.stderr);
  assert.match(r.stderr, /^error: not authorized: Rollback changes the host and needs root or the polkit action io\.atomhost\.manage \(caller uid 65534\)/);
  assert.deepEqual(await deployments(), before);
});

test('a second transaction is refused naming the first; cancel stops the first and changes nothing', async (t) => {
  if (!requireRoot(t)) return;
  const files: Record<string, string> = {};
  for (let i = 0; i < 500; i++) files[`usr/share/many/f${i}`] = `file ${i} of 3.0\n`.repeat(40);
  await publish('3.0', files);
  host.server.setDelay(100); // a slow network: the pull is still running when we cancel it
  const before = await deployments();
  await th.sh('(atomhost upgrade > /tmp/upgrade.out 2> /tmp/upgrade.err; echo $? > /tmp/upgrade.rc) > /dev/null 2>&1 &');
  let running = false;
  for (let i = 0; i < 100 && !running; i++) {
    const s = JSON.parse((await th.exec('atomhost', ['status', '--json'])).stdout) as HostStatus;
    running = Boolean(s.status.transaction);
    if (!running) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(running, 'the upgrade is running');
  const second = await th.exec('atomhost', ['rollback']);
  assert.equal(second.exitCode, 5, second.stderr);
  assert.match(second.stderr, /^error: transaction in progress: upgrade started by :1\.\d+ at /);
  const c = await th.exec('atomhost', ['cancel']);
  assert.equal(c.exitCode, 0, c.stderr);
  let rc = '';
  for (let i = 0; i < 100 && !rc; i++) {
    rc = (await th.exec('cat', ['/tmp/upgrade.rc'])).stdout.trim();
    if (!rc) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(rc, '1');
  assert.match((await th.exec('cat', ['/tmp/upgrade.err'])).stdout, /^error: .*cancelled/);
  assert.deepEqual(await deployments(), before, 'the cancelled upgrade deployed nothing');
  host.server.setDelay(0);
  // The daemon is free again and completes the next one.
  const again = await th.exec('atomhost', ['upgrade']);
  assert.equal(again.exitCode, 0, again.stderr);
});

test('transactions are in the journal with stable MESSAGE_IDs and their transaction id', async (t) => {
  if (!requireRoot(t)) return;
  const j = await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.transactionSucceeded}`, '-o', 'json', '--no-pager']);
  const entries = j.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
  assert.ok(entries.length >= 2, j.stdout + j.stderr);
  assert.ok(entries.every((e) => /^[0-9a-f-]{36}$/.test(e.ATOMHOST_TRANSACTION)));
  assert.ok(entries.some((e) => /^upgrade succeeded/.test(e.MESSAGE) && /^[0-9a-f]{64}$/.test(e.ATOMHOST_REVISION)));
  const failed = await th.exec('journalctl', [`MESSAGE_ID=${MESSAGE_IDS.transactionFailed}`, '-o', 'json', '--no-pager']);
  assert.match(failed.stdout, /"ATOMHOST_ERROR":"AH_ERR_CANCELLED"/);
});

test('a daemon slower to start than the bus waits is waited for; one that then fails is named', async (t) => {
  if (!requireRoot(t)) return;
  // The bus gives up on an activation after 1.5 s here (25 s by default), and atomhostd
  // takes 5 s to start, as it can on a slow disk after an interrupted transaction.
  const setup = await th.sh(`set -e
    printf '<busconfig><limit name="service_start_timeout">1500</limit></busconfig>\\n' > /etc/dbus-1/system-local.conf
    busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
    mkdir -p /run/systemd/system/atomhostd.service.d
    printf '[Service]\\nExecStartPre=/bin/sleep 5\\n' > /run/systemd/system/atomhostd.service.d/slow.conf
    systemctl daemon-reload; systemctl stop atomhostd`);
  assert.equal(setup.exitCode, 0, setup.stderr);
  try {
    // A plain D-Bus client gets the bus's timeout: the case is real.
    const raw = await th.exec('busctl', ['call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'GetStatus']);
    assert.notEqual(raw.exitCode, 0, raw.stdout);
    assert.match(raw.stderr, /timed out/i);
    await th.sh('systemctl stop atomhostd');
    const r = await th.exec('atomhost', ['status', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as HostStatus).metadata.sysroot, SYSROOT);

    // Slow, then failing (and not restarted): the CLI stops waiting and names the unit.
    await th.sh(`printf '[Service]\\nExecStartPre=/bin/sh -c "sleep 4; exit 1"\\nRestart=no\\n' > /run/systemd/system/atomhostd.service.d/slow.conf; systemctl daemon-reload; systemctl stop atomhostd`);
    const failed = await th.exec('atomhost', ['status'], { env: { ATOMHOST_DAEMON_START_TIMEOUT_S: '600' } });
    assert.equal(failed.exitCode, 1, failed.stdout);
    assert.match(failed.stderr, /atomhostd\.service failed to start; journalctl -u atomhostd says why/);
  } finally {
    await th.sh('rm -rf /run/systemd/system/atomhostd.service.d/slow.conf /etc/dbus-1/system-local.conf; systemctl daemon-reload; systemctl reset-failed atomhostd; busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig');
  }
  assert.equal((await th.exec('atomhost', ['status'])).exitCode, 0, 'atomhostd starts again as usual');
});
