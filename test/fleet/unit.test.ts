// units/atomhost-fleetlock.service under a real systemd (the test host): it starts as a
// dynamic user with its hardening, serves locks from the env file's settings, logs each
// decision to the journal. (The token through LoadCredential= is documented but not tested
// here: in the namespace test host systemd 252 cannot mount the credentials ramfs and its
// fallback directory stays root-only, so a DynamicUser service gets EACCES; bearer auth
// itself is tested in server.test.ts.)
import test from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestHost } from '../testhost/testhost.js';
import { requireRoot } from '../helpers/capability.js';
import { etcdOrSkip, holdersInEtcd } from './helpers.js';
import { FleetLockClient } from '../../fleet/client.js';
import { freePort } from '../../sandbox/registry.js';

async function waitListening(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/metrics`).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 30 s`);
    await sleep(200);
  }
}

test('atomhost-fleetlock.service runs hardened under systemd and serves locks', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const etcd = await etcdOrSkip(t);
  if (!etcd) return;
  let th: TestHost | undefined;
  try {
    th = await TestHost.boot();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const setup = await th.sh(`set -e
      printf 'FLEETLOCK_LISTEN=127.0.0.1:${port}\\nFLEETLOCK_ETCD=${etcd.clientUrls[0]}\\nFLEETLOCK_SLOTS=1\\nFLEETLOCK_ARGS=--group workers=2 --lock-ttl 10m\\n' > /etc/atomhost/fleetlock.env
      test "$(systemctl is-enabled atomhost-fleetlock.service)" = disabled
      systemctl start atomhost-fleetlock.service`);
    assert.equal(setup.exitCode, 0, setup.stderr);
    try {
      await waitListening(url);
    } catch (err) {
      const j = await th.exec('journalctl', ['-u', 'atomhost-fleetlock.service', '--no-pager', '-n', '30']);
      throw new Error(`${(err as Error).message}\n${j.stdout}`);
    }
    const show = (await th.exec('systemctl', ['show', 'atomhost-fleetlock.service', '-p', 'ActiveState', '-p', 'DynamicUser', '-p', 'ProtectSystem', '-p', 'NoNewPrivileges'])).stdout;
    assert.match(show, /ActiveState=active/);
    assert.match(show, /DynamicUser=yes/);
    assert.match(show, /ProtectSystem=strict/);
    const mainPid = (await th.exec('systemctl', ['show', '-p', 'MainPID', '--value', 'atomhost-fleetlock.service'])).stdout.trim();
    const uid = (await th.exec('sh', ['-c', `awk '/^Uid:/{print $2}' /proc/${mainPid}/status`])).stdout.trim();
    assert.ok(Number(uid) > 0, `runs as a dynamic user, not root (uid ${uid})`);

    const a = new FleetLockClient({ baseUrl: url, id: 'unit-a', group: 'workers' });
    assert.equal(await a.preReboot(), true);
    assert.deepEqual(await holdersInEtcd(etcd.clientUrls, 'workers'), ['unit-a']);
    assert.equal(await new FleetLockClient({ baseUrl: url, id: 'unit-b', group: 'workers' }).preReboot(), true);
    assert.equal(await new FleetLockClient({ baseUrl: url, id: 'unit-c', group: 'workers' }).preReboot(), false, 'workers=2 from FLEETLOCK_ARGS');
    await new FleetLockClient({ baseUrl: url, id: 'unit-b', group: 'workers' }).steadyState();
    await a.steadyState();
    assert.deepEqual(await holdersInEtcd(etcd.clientUrls, 'workers'), []);

    await sleep(300);
    const journal = (await th.exec('journalctl', ['-u', 'atomhost-fleetlock.service', '--no-pager', '-o', 'cat'])).stdout;
    assert.match(journal, /fleetlock: listening on 127\.0\.0\.1:\d+; .* groups workers=2; lock ttl 600s; auth none/);
    assert.match(journal, /fleetlock: pre-reboot group=workers id=unit-a granted/);
    assert.match(journal, /fleetlock: steady-state group=workers id=unit-a released/);
    assert.match(journal, /fleetlock: pre-reboot group=workers id=unit-c refused: all 2 slots held/);
    const stop = await th.exec('systemctl', ['stop', 'atomhost-fleetlock.service']);
    assert.equal(stop.exitCode, 0, stop.stderr);
  } finally {
    await th?.shutdown();
    await etcd.stop();
  }
});
