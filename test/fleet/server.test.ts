// The FleetLock server against a real single-member etcd: Zincati's exact request, every
// refusal (leaving etcd as it was), idempotence, full groups, per-group slots, lease expiry,
// lease reuse, bearer auth, metrics, etcd unreachable, and the client against it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdOrSkip, holdersInEtcd, lockBody, post, startServer } from './helpers.js';
import { FleetLockClient } from '../../fleet/client.js';
import { FleetLockError } from '../../fleet/protocol.js';
import { freePort } from '../../sandbox/registry.js';
import { EtcdClient, prefixEnd } from '../../fleet/etcd.js';
import { KEY_ROOT } from '../../fleet/semaphore.js';

test('fleetlock server on a real etcd', async (t) => {
  const etcd = await etcdOrSkip(t);
  if (!etcd) return;
  const E = etcd.clientUrls;
  try {
    await t.test('a request exactly as Zincati sends it is granted, repeated idempotently, and released', async () => {
      const s = await startServer(E, { slots: 1 });
      try {
        // Zincati (src/fleet_lock/mod.rs): serde_json::to_string_pretty body, only the protocol header.
        const body = '{\n  "client_params": {\n    "id": "e0f3745b108f471cbd4883c6fbed8cdd",\n    "group": "default"\n  }\n}';
        const r1 = await post(`${s.url}/v1/pre-reboot`, body);
        assert.equal(r1.status, 200, r1.body);
        assert.deepEqual(await holdersInEtcd(E), ['e0f3745b108f471cbd4883c6fbed8cdd']);
        const r2 = await post(`${s.url}/v1/pre-reboot`, body);
        assert.equal(r2.status, 200, 'a holder asking again keeps its slot');
        assert.deepEqual(await holdersInEtcd(E), ['e0f3745b108f471cbd4883c6fbed8cdd']);
        const r3 = await post(`${s.url}/v1/steady-state`, body);
        assert.equal(r3.status, 200, r3.body);
        assert.deepEqual(await holdersInEtcd(E), []);
        const r4 = await post(`${s.url}/v1/steady-state`, body);
        assert.equal(r4.status, 200, 'releasing twice is harmless');
        assert.ok(s.lines.some((l) => /pre-reboot group=default id=e0f3745b108f471cbd4883c6fbed8cdd granted/.test(l)), s.lines.join('\n'));
      } finally {
        await s.close();
      }
    });

    await t.test('every malformed request is refused with {kind, value} and a 4xx, and etcd is left as it was', async () => {
      const s = await startServer(E, { slots: 5 });
      try {
        const cases: { name: string; path?: string; body: string; headers?: Record<string, string>; status: number; kind: string; value: RegExp; method?: string }[] = [
          { name: 'no protocol header', body: lockBody('n1'), headers: {}, status: 400, kind: 'invalid_client_identity', value: /fleet-lock-protocol/ },
          { name: 'header not "true"', body: lockBody('n1'), headers: { 'fleet-lock-protocol': 'yes' }, status: 400, kind: 'invalid_client_identity', value: /fleet-lock-protocol/ },
          { name: 'malformed JSON', body: '{"client_params": {"id": "n1"', status: 400, kind: 'invalid_client_identity', value: /malformed JSON/ },
          { name: 'JSON array', body: '[]', status: 400, kind: 'invalid_client_identity', value: /client_params/ },
          { name: 'missing id', body: '{"client_params":{"group":"default"}}', status: 400, kind: 'invalid_client_identity', value: /client_params\.id is missing/ },
          { name: 'empty id', body: '{"client_params":{"id":"","group":"default"}}', status: 400, kind: 'invalid_client_identity', value: /client_params\.id is missing/ },
          { name: 'id with a slash (would be an etcd key path)', body: lockBody('../x'), status: 400, kind: 'invalid_client_identity', value: /client_params\.id/ },
          { name: 'bad group', body: lockBody('n1', 'a/b'), status: 400, kind: 'invalid_client_identity', value: /client_params\.group "a\/b"/ },
          { name: 'group not a string', body: '{"client_params":{"id":"n1","group":5}}', status: 400, kind: 'invalid_client_identity', value: /group must be a string/ },
          { name: 'body too large', body: `{"client_params":{"id":"n1","group":"default","pad":"${'x'.repeat(10000)}"}}`, status: 413, kind: 'body_too_large', value: /8192 bytes/ },
          { name: 'unknown path', path: '/v1/reboot-now', body: lockBody('n1'), status: 404, kind: 'not_found', value: /no such endpoint/ },
          { name: 'GET on pre-reboot', method: 'GET', body: '', status: 405, kind: 'method_not_allowed', value: /POST/ },
        ];
        for (const c of cases) {
          const res = await fetch(`${s.url}${c.path ?? '/v1/pre-reboot'}`, { method: c.method ?? 'POST', headers: c.headers ?? { 'fleet-lock-protocol': 'true' }, body: c.method === 'GET' ? undefined : c.body });
          const text = await res.text();
          assert.equal(res.status, c.status, `${c.name}: ${text}`);
          const j = JSON.parse(text) as { kind: string; value: string };
          assert.equal(j.kind, c.kind, c.name);
          assert.match(j.value, c.value, c.name);
        }
        // Chunked (no content-length): the limit holds while reading too.
        const big = new ReadableStream({ start(ctl) { for (let i = 0; i < 20; i++) ctl.enqueue(new TextEncoder().encode('x'.repeat(1000))); ctl.close(); } });
        const rs = await fetch(`${s.url}/v1/pre-reboot`, { method: 'POST', headers: { 'fleet-lock-protocol': 'true' }, body: big, duplex: 'half' } as RequestInit);
        assert.equal(rs.status, 413);
        assert.deepEqual(await holdersInEtcd(E), [], 'no refused request left a holder');
        // A missing group is the default group, as in Zincati.
        assert.equal((await post(`${s.url}/v1/pre-reboot`, '{"client_params":{"id":"n1"}}')).status, 200);
        assert.deepEqual(await holdersInEtcd(E), ['n1']);
        assert.equal((await post(`${s.url}/v1/steady-state`, lockBody('n1'))).status, 200);
      } finally {
        await s.close();
      }
    });

    await t.test('a full group refuses with failed_lock; a non-holder releasing frees nothing', async () => {
      const s = await startServer(E, { slots: 1 });
      try {
        const a = new FleetLockClient({ baseUrl: s.url, id: 'node-a' });
        const b = new FleetLockClient({ baseUrl: `${s.url}/`, id: 'node-b' });
        assert.equal(await a.preReboot(), true);
        const raw = await post(`${s.url}/v1/pre-reboot`, lockBody('node-b'));
        assert.equal(raw.status, 409);
        assert.equal(raw.json?.kind, 'failed_lock');
        assert.match(raw.json?.value ?? '', /all 1 semaphore slots of group default/);
        assert.equal(await b.preReboot(), false, 'the client reads failed_lock as "no slot free"');
        await b.steadyState();
        assert.deepEqual(await holdersInEtcd(E), ['node-a'], 'node-b releasing did not free node-a');
        assert.equal(await a.preReboot(), true, 'the holder asking again is granted even when full');
        await a.steadyState();
        // The same node asking five times at once (decided in one batch): one slot, all granted.
        assert.deepEqual(await Promise.all([0, 1, 2, 3, 4].map(() => a.preReboot())), [true, true, true, true, true]);
        assert.deepEqual(await holdersInEtcd(E), ['node-a']);
        await a.steadyState();
        assert.equal(await b.preReboot(), true, 'the freed slot goes to the next node');
        await b.steadyState();
      } finally {
        await s.close();
      }
    });

    await t.test('--group NAME=N sets one group; the others keep --slots', async () => {
      const s = await startServer(E, { slots: 1, groups: new Map([['workers', 3]]) });
      try {
        const grants = [];
        for (const id of ['w1', 'w2', 'w3', 'w4']) grants.push(await new FleetLockClient({ baseUrl: s.url, id, group: 'workers' }).preReboot());
        assert.deepEqual(grants, [true, true, true, false]);
        assert.equal(await new FleetLockClient({ baseUrl: s.url, id: 'c1', group: 'controllers' }).preReboot(), true);
        assert.equal(await new FleetLockClient({ baseUrl: s.url, id: 'c2', group: 'controllers' }).preReboot(), false);
        assert.deepEqual(await holdersInEtcd(E, 'workers'), ['w1', 'w2', 'w3']);
        assert.deepEqual(await holdersInEtcd(E, 'controllers'), ['c1']);

        // Metrics: slots and holders from etcd, requests by result.
        const m = await (await fetch(`${s.url}/metrics`)).text();
        assert.match(m, /^atomhost_fleetlock_slots\{group="workers"\} 3$/m);
        assert.match(m, /^atomhost_fleetlock_slots\{group="controllers"\} 1$/m);
        assert.match(m, /^atomhost_fleetlock_holders\{group="workers"\} 3$/m);
        assert.match(m, /^atomhost_fleetlock_holders\{group="controllers"\} 1$/m);
        assert.match(m, /^atomhost_fleetlock_requests_total\{endpoint="pre-reboot",result="granted"\} 4$/m);
        assert.match(m, /^atomhost_fleetlock_requests_total\{endpoint="pre-reboot",result="full"\} 2$/m);
        assert.match(m, /^atomhost_fleetlock_etcd_up 1$/m);
        for (const id of ['w1', 'w2', 'w3']) await new FleetLockClient({ baseUrl: s.url, id, group: 'workers' }).steadyState();
        await new FleetLockClient({ baseUrl: s.url, id: 'c1', group: 'controllers' }).steadyState();
        assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^atomhost_fleetlock_holders\{group="workers"\} 0$/m);
      } finally {
        await s.close();
      }
    });

    await t.test('a lock whose node never comes back expires with its lease; asking again renews it', async () => {
      const s = await startServer(E, { slots: 1, lockTtlSeconds: 3 });
      try {
        const dead = new FleetLockClient({ baseUrl: s.url, id: 'dead', group: 'ttl' });
        const live = new FleetLockClient({ baseUrl: s.url, id: 'live', group: 'ttl' });
        assert.equal(await dead.preReboot(), true);
        // Renewed every second for 4 s, past its 3 s lease: still held (a margin for a loaded machine).
        for (let i = 0; i < 4; i++) {
          await sleep(1000);
          assert.equal(await dead.preReboot(), true);
        }
        assert.equal(await live.preReboot(), false);
        // Now 'dead' stops asking: within ~3 s (+ etcd's expiry tick) the slot is free.
        const t0 = Date.now();
        let granted = false;
        while (!granted && Date.now() - t0 < 10_000) {
          await sleep(250);
          granted = await live.preReboot();
        }
        assert.ok(granted, 'the slot of a node that never came back was freed');
        assert.ok(Date.now() - t0 >= 2000, `not freed before the lease ran out (${Date.now() - t0} ms)`);
        assert.deepEqual(await holdersInEtcd(E, 'ttl'), ['live']);
        await live.steadyState();
      } finally {
        await s.close();
      }
    });

    await t.test("a released slot's lease is reused for the next grant with the full TTL again; one revoked meanwhile is replaced", async () => {
      const s = await startServer(E, { slots: 1, lockTtlSeconds: 60 });
      const etcdc = new EtcdClient(E);
      const prefix = `${KEY_ROOT}reuse/holders/`;
      const holder = async () => (await etcdc.range(prefix, prefixEnd(prefix))).kvs[0]!;
      try {
        const a = new FleetLockClient({ baseUrl: s.url, id: 'a', group: 'reuse' });
        const b = new FleetLockClient({ baseUrl: s.url, id: 'b', group: 'reuse' });
        const c = new FleetLockClient({ baseUrl: s.url, id: 'c', group: 'reuse' });
        assert.equal(await a.preReboot(), true);
        const leaseA = (await holder()).lease;
        await sleep(2500); // the lease runs down while 'a' holds it
        await a.steadyState();
        assert.ok((await etcdc.leaseTimeToLive(leaseA)) > 0, 'not revoked: kept for the next grant');
        assert.equal(await b.preReboot(), true);
        const kb = await holder();
        assert.equal(kb.lease, leaseA, "b's key is on a's old lease");
        const left = await etcdc.leaseTimeToLive(kb.lease);
        assert.ok(left >= 58 && left <= 60, `renewed to the full TTL with the grant (${left} s left)`);
        await b.steadyState();
        // A kept lease that is gone by the next grant (revoked by hand here): etcd refuses the
        // swap, a new lease is granted, and the node gets its slot all the same.
        await etcdc.leaseRevoke(leaseA);
        assert.equal(await c.preReboot(), true);
        const kc = await holder();
        assert.equal(kc.key, `${prefix}c`);
        assert.notEqual(kc.lease, leaseA);
        assert.ok((await etcdc.leaseTimeToLive(kc.lease)) >= 58);
        await c.steadyState();
        assert.deepEqual(await holdersInEtcd(E, 'reuse'), []);
      } finally {
        await s.close();
        await etcdc.close();
      }
    });

    await t.test('--token-file: bearer token required, compared on every endpoint, never logged', async () => {
      const token = 'sekrit-token-0123456789abcdef';
      const s = await startServer(E, { slots: 1, token });
      try {
        const none = await post(`${s.url}/v1/pre-reboot`, lockBody('auth1'));
        assert.equal(none.status, 401);
        assert.equal(none.json?.kind, 'unauthorized');
        const wrong = await post(`${s.url}/v1/pre-reboot`, lockBody('auth1'), { 'fleet-lock-protocol': 'true', authorization: `Bearer ${token}x` });
        assert.equal(wrong.status, 401);
        assert.equal((await fetch(`${s.url}/metrics`)).status, 401);
        await assert.rejects(new FleetLockClient({ baseUrl: s.url, id: 'auth1', token: 'nope' }).preReboot(), (e: FleetLockError) => e instanceof FleetLockError && e.kind === 'unauthorized' && e.status === 401);
        assert.deepEqual(await holdersInEtcd(E), []);
        const c = new FleetLockClient({ baseUrl: s.url, id: 'auth1', token });
        assert.equal(await c.preReboot(), true);
        await c.steadyState();
        assert.equal((await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
        assert.ok(s.lines.length > 0);
        assert.ok(!s.lines.some((l) => l.includes(token) || l.includes('sekrit')), s.lines.join('\n'));
      } finally {
        await s.close();
      }
    });
  } catch (err) {
    (err as Error).message += `\netcd logs:\n${etcd.logs()}`;
    throw err;
  } finally {
    await etcd.stop();
  }
});

test('etcd unreachable: the server answers 503 etcd_unavailable and never grants', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const s = await startServer([dead, `http://127.0.0.1:${await freePort()}`], { slots: 5 });
  try {
    const raw = await post(`${s.url}/v1/pre-reboot`, lockBody('n1'));
    assert.equal(raw.status, 503);
    assert.equal(raw.json?.kind, 'etcd_unavailable');
    assert.match(raw.json?.value ?? '', /no etcd member answered/);
    await assert.rejects(new FleetLockClient({ baseUrl: s.url, id: 'n1' }).preReboot(), (e: FleetLockError) => e.kind === 'etcd_unavailable' && e.status === 503 && /etcd_unavailable/.test(e.message));
    await assert.rejects(new FleetLockClient({ baseUrl: s.url, id: 'n1' }).steadyState(), (e: FleetLockError) => e.kind === 'etcd_unavailable');
    assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^atomhost_fleetlock_etcd_up 0$/m);
  } finally {
    await s.close();
  }
});
