// units/atomhost-fleetlock.service under a real systemd (the test host): it starts as a
// dynamic user with its hardening, serves locks from the env file's settings, logs each
// decision to the journal; then with the token drop-in the unit's comment documents
// (LoadCredential=), the token reaches the server through systemd's credentials and a
// request without it is refused.
// The test host runs systemd with container=other, where systemd leaves / private (a real
// boot makes it shared); systemd 252 mounts a unit's credentials ramfs in a child mount
// namespace, which then never shows in its own, and its fallback directory stays root-only
// (EACCES for a DynamicUser). So the test makes / shared first, as a real boot has it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestHost } from '../testhost/testhost.js';
import { requireRoot } from '../helpers/capability.js';
import { etcdOrSkip, holdersInEtcd, lockBody, post } from './helpers.js';
import { FleetLockClient } from '../../fleet/client.js';
import { FleetLockError } from '../../fleet/protocol.js';
import { freePort } from '../../sandbox/registry.js';

async function waitListening(url: string, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/metrics`, { headers }).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 30 s`);
    await sleep(200);
  }
}

test('atomhost-fleetlock.service runs hardened under systemd, serves locks, and takes its token through LoadCredential=', async (t) => {
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

    // The token drop-in of the unit's comment: the token file is root's (0600), the server a
    // dynamic user that can read it only as systemd's credential.
    const token = 'fleet-token-0123456789abcdef';
    const drop = await th.sh(`set -e
      mount --make-rshared /
      umask 077; printf '%s\\n' '${token}' > /etc/atomhost/fleetlock.token
      mkdir -p /etc/systemd/system/atomhost-fleetlock.service.d
      printf '[Service]\\nLoadCredential=token:/etc/atomhost/fleetlock.token\\nEnvironment=FLEETLOCK_TOKEN_ARGS=--token-file=%%d/token\\n' > /etc/systemd/system/atomhost-fleetlock.service.d/token.conf
      systemctl daemon-reload
      systemctl restart atomhost-fleetlock.service`);
    assert.equal(drop.exitCode, 0, drop.stderr);
    await sleep(500);
    try {
      await waitListening(url, { authorization: `Bearer ${token}` });
    } catch (err) {
      const j = await th.exec('journalctl', ['-u', 'atomhost-fleetlock.service', '--no-pager', '-n', '30']);
      throw new Error(`${(err as Error).message}\n${j.stdout}`);
    }
    const cred = await th.sh(`pid=$(systemctl show -p MainPID --value atomhost-fleetlock.service); tr '\\0' ' ' < /proc/$pid/cmdline; echo; stat -c '%U %a' /run/credentials/atomhost-fleetlock.service/token /etc/atomhost/fleetlock.token`);
    assert.match(cred.stdout, /--token-file=\/run\/credentials\/atomhost-fleetlock\.service\/token/, 'the server reads the credential, not the root-only file');
    assert.match(cred.stdout, /^atomhost-fleetlock 400$/m, "the credential is the dynamic user's, read-only");
    assert.match(cred.stdout, /^root 600$/m);

    const refused = await post(`${url}/v1/pre-reboot`, lockBody('unit-d', 'workers'));
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.json, { kind: 'unauthorized', value: 'missing or wrong "Authorization: Bearer" token' });
    const wrong = await post(`${url}/v1/pre-reboot`, lockBody('unit-d', 'workers'), { 'fleet-lock-protocol': 'true', authorization: 'Bearer not-the-token-at-all' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json?.kind, 'unauthorized');
    await assert.rejects(new FleetLockClient({ baseUrl: url, id: 'unit-d', group: 'workers' }).preReboot(), (e: FleetLockError) => e.kind === 'unauthorized' && e.status === 401);
    assert.deepEqual(await holdersInEtcd(etcd.clientUrls, 'workers'), [], 'nothing granted without the token');
    const d = new FleetLockClient({ baseUrl: url, id: 'unit-d', group: 'workers', token });
    assert.equal(await d.preReboot(), true);
    assert.deepEqual(await holdersInEtcd(etcd.clientUrls, 'workers'), ['unit-d']);
    await d.steadyState();
    assert.deepEqual(await holdersInEtcd(etcd.clientUrls, 'workers'), []);

    await sleep(300);
    const journal2 = (await th.exec('journalctl', ['-u', 'atomhost-fleetlock.service', '--no-pager', '-o', 'cat'])).stdout;
    assert.match(journal2, /fleetlock: listening on .*; auth bearer token; http/);
    assert.match(journal2, /fleetlock: pre-reboot refused: missing or wrong bearer token/);
    assert.match(journal2, /fleetlock: pre-reboot group=workers id=unit-d granted/);
    assert.ok(!journal2.includes(token), 'the token is never logged');

    const stop = await th.exec('systemctl', ['stop', 'atomhost-fleetlock.service']);
    assert.equal(stop.exitCode, 0, stop.stderr);
  } finally {
    await th?.shutdown();
    await etcd.stop();
  }
});
