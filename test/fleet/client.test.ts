// The FleetLock client and node id without a server of ours: the id is stable, not the
// machine-id, shaped as Zincati's; bad settings are refused before any request; what the
// client sends is byte for byte the wire format; a server's non-FleetLock answer is an error.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fleetNodeId } from '../../fleet/node-id.js';
import { FleetLockClient } from '../../fleet/client.js';
import { FleetLockError } from '../../fleet/protocol.js';
import { freePort } from '../../sandbox/registry.js';

test('fleetNodeId: stable, a v4-shaped 128-bit hex id, not the machine-id, bad files refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-nodeid-'));
  try {
    const mid = 'b08dfa6083e7567a1921a715000001fb';
    const f = join(dir, 'machine-id');
    await writeFile(f, `${mid}\n`);
    const id = fleetNodeId(f);
    assert.match(id, /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    assert.equal(fleetNodeId(f), id, 'stable');
    assert.notEqual(id, mid);
    assert.ok(!id.includes(mid.slice(0, 8)));
    await writeFile(join(dir, 'other'), 'c08dfa6083e7567a1921a715000001fb\n');
    assert.notEqual(fleetNodeId(join(dir, 'other')), id, 'another machine, another id');
    for (const bad of ['', 'uninitialized\n', '00000000000000000000000000000000\n', 'zz8dfa6083e7567a1921a715000001fb']) {
      await writeFile(join(dir, 'bad'), bad);
      assert.throws(() => fleetNodeId(join(dir, 'bad')), new RegExp(`${join(dir, 'bad')} does not hold a machine id`));
    }
    assert.throws(() => fleetNodeId(join(dir, 'missing')), /cannot read the machine id from .*missing/);
    if (process.getuid?.() !== undefined) assert.match(fleetNodeId(), /^[0-9a-f]{32}$/, 'this machine has an id');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('FleetLockClient refuses a bad base URL, group or id before sending anything', () => {
  assert.throws(() => new FleetLockClient({ baseUrl: 'not a url', id: 'a' }), /is not a URL/);
  assert.throws(() => new FleetLockClient({ baseUrl: 'ftp://x/', id: 'a' }), /must be http/);
  assert.throws(() => new FleetLockClient({ baseUrl: 'http://x/', id: 'a', group: 'a b' }), /group "a b" does not match/);
  assert.throws(() => new FleetLockClient({ baseUrl: 'http://x/', id: '' }), /node id ""/);
});

test('FleetLockClient sends the wire format and maps airlock answers (a fake airlock: airlock cannot run here)', async () => {
  const seen: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let answer: { status: number; body: string } = { status: 200, body: '' };
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    const c = new FleetLockClient({ baseUrl: `${base}/lock`, id: 'abc123', group: 'workers', token: 'tok' });
    assert.equal(await c.preReboot(), true);
    await c.steadyState();
    assert.equal(seen[0]!.url, '/lock/v1/pre-reboot', 'the base URL is a directory');
    assert.equal(seen[1]!.url, '/lock/v1/steady-state');
    for (const s of seen) {
      assert.equal(s.method, 'POST');
      assert.equal(s.headers['fleet-lock-protocol'], 'true');
      assert.equal(s.headers.authorization, 'Bearer tok');
      assert.deepEqual(JSON.parse(s.body), { client_params: { id: 'abc123', group: 'workers' } });
    }
    await new FleetLockClient({ baseUrl: base, id: 'x' }).preReboot();
    assert.equal(seen[2]!.url, '/v1/pre-reboot');
    assert.equal(seen[2]!.headers.authorization, undefined, 'no token, no header');
    assert.equal(JSON.parse(seen[2]!.body).client_params.group, 'default');

    // airlock answers a full group with 500 failed_lock: still "no slot", not an error.
    answer = { status: 500, body: '{"kind":"failed_lock","value":"all 1 semaphore slots currently locked"}' };
    assert.equal(await c.preReboot(), false);
    answer = { status: 400, body: '{"kind":"invalid_client_identity","value":"empty client ID"}' };
    await assert.rejects(c.preReboot(), (e: FleetLockError) => e instanceof FleetLockError && e.kind === 'invalid_client_identity' && e.status === 400 && /empty client ID/.test(e.message));
    await assert.rejects(c.steadyState(), (e: FleetLockError) => e.kind === 'invalid_client_identity');
    answer = { status: 502, body: '<html>Bad Gateway</html>' };
    await assert.rejects(c.preReboot(), (e: FleetLockError) => e.kind === 'generic_error' && e.status === 502 && /Bad Gateway/.test(e.value));
  } finally {
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  }
  // Nobody listening / no answer in time.
  await assert.rejects(new FleetLockClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, id: 'x' }).preReboot(), (e: FleetLockError) => e.kind === 'request_failed' && e.status === undefined && /ECONNREFUSED/.test(e.message));
  const hang = createServer(() => {});
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  try {
    const c = new FleetLockClient({ baseUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}`, id: 'x', timeoutMs: 300 });
    await assert.rejects(c.preReboot(), (e: FleetLockError) => e.kind === 'request_failed' && /no answer within 300 ms/.test(e.message));
  } finally {
    hang.closeAllConnections();
    await new Promise((r) => hang.close(r));
  }
});
