// Two nodes that update themselves under one FleetLock slot: each node is a real sysroot
// (tmpfs) with its own update agent, the lock is the real FleetLockClient against the real
// `fleetlock serve` code on a real etcd. Only the node ids are given (both "nodes" share this
// machine's machine-id, from which fleetNodeId derives a node's id), and the reboot is
// recorded (test/updates/testhost.test.ts reboots for real).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadUpdatesConfig } from '../../core/updates/config.js';
import { requireRoot } from '../helpers/capability.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { etcdOrSkip, startServer } from '../fleet/helpers.js';
import { LocalHost } from '../../core/local-host.js';
import { UpdateAgent } from '../../core/updates/agent.js';
import { loadPersisted } from '../../core/updates/state.js';
import { FleetLockClient } from '../../fleet/client.js';
import { policyLock } from '../../fleet/policy-lock.js';
import { EtcdClient } from '../../fleet/etcd.js';
import { Semaphore } from '../../fleet/semaphore.js';

interface Node {
  id: string;
  f: OsFixture;
  host: LocalHost;
  dir: string;
  reboots: number;
}

test('two nodes, one slot (the real FleetLock client and server on etcd): the second reboots only after the first is healthy again', async (t) => {
  if (!requireRoot(t)) return;
  const etcd = await etcdOrSkip(t);
  if (!etcd) return;
  const server = await startServer(etcd.clientUrls, { slots: 1 });
  const nodes: Node[] = [];
  try {
    for (const id of ['node-a', 'node-b']) {
      const f = await OsFixture.createDeployed();
      const host = await LocalHost.open(f.sysroot);
      nodes.push({ id, f, host, dir: join(f.scratch.dir, 'updates.d'), reboots: 0 });
      await f.publish('2.0');
      await mkdir(nodes.at(-1)!.dir, { recursive: true });
      await writeFile(join(nodes.at(-1)!.dir, '50-fleet.yaml'), `strategy: fleet_lock\nfleet_lock: { base_url: "${server.url}", group: workers }\n`);
    }
    const [a, b] = nodes;
    const agent = (n: Node) =>
      new UpdateAgent({
        host: n.host,
        configDir: n.dir,
        transaction: (_title, fn) => fn({}),
        reboot: async () => void n.reboots++,
        lock: async (cfg) => new FleetLockClient({ baseUrl: cfg.baseUrl, group: cfg.group, id: n.id }),
        log: () => {},
      });
    const holders = async () => (await new Semaphore(new EtcdClient(etcd.clientUrls)).snapshot()).find((g) => g.group === 'workers')?.holders.map((h) => h.id) ?? [];

    let r = await agent(a).check();
    assert.equal(r.state, 'rebooting', r.reason ?? '');
    assert.equal(a.reboots, 1);
    assert.deepEqual(await holders(), ['node-a'], 'etcd records node-a as the holder');

    r = await agent(b).check();
    assert.equal(r.state, 'waiting');
    assert.equal(r.reason, 'no reboot slot free in fleet lock group workers');
    assert.equal(b.reboots, 0, 'node-b stays up while node-a holds the slot');
    assert.equal((await b.host.status()).status.deployments.length, 2, 'but its update is already staged');

    // node-a "boots" its new revision: while the gate has not passed, the slot stays taken.
    r = await agent(a).check();
    assert.equal(r.state, 'gating');
    assert.equal((await agent(b).check()).state, 'waiting');
    await a.host.setRevisionState((await loadPersisted(a.f.sysroot)).rebootingInto!.revision, 'healthy');
    r = await agent(a).check();
    assert.equal(r.state, 'steady', r.reason ?? '');
    assert.deepEqual(await holders(), [], 'node-a released its slot once healthy');

    r = await agent(b).check();
    assert.equal(r.state, 'rebooting', r.reason ?? '');
    assert.equal(b.reboots, 1);
    assert.deepEqual(await holders(), ['node-b']);
    assert.ok(server.lines.some((l) => /node-a/.test(l)) && server.lines.some((l) => /node-b/.test(l)), server.lines.join('\n'));
  } finally {
    for (const n of nodes) {
      await n.host.close();
      await n.f.dispose();
    }
    await server.close();
    await etcd.stop();
  }
});

test('the fleet lock atomhostd gives the agent (node id from the machine-id) sends fleet_lock.token_file as a bearer token; a wrong one keeps the node up', async (t) => {
  if (!requireRoot(t)) return;
  const etcd = await etcdOrSkip(t);
  if (!etcd) return;
  const server = await startServer(etcd.clientUrls, { slots: 1, token: 's3cret-token' });
  const f = await OsFixture.createDeployed();
  const host = await LocalHost.open(f.sysroot);
  try {
    await f.publish('2.0');
    const dir = join(f.scratch.dir, 'updates.d');
    const tokenFile = join(f.scratch.dir, 'fleetlock.token');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '50-fleet.yaml'), `strategy: fleet_lock\nfleet_lock: { base_url: "${server.url}", group: workers, token_file: "${tokenFile}" }\n`);
    let reboots = 0;
    const agent = () => new UpdateAgent({ host, configDir: dir, transaction: (_title, fn) => fn({}), reboot: async () => void reboots++, lock: (cfg) => policyLock(cfg), log: () => {} });

    let r = await agent().check();
    assert.notEqual(r.state, 'rebooting');
    assert.match(r.reason ?? '', /fleet_lock\.token_file .*fleetlock\.token: cannot read it \(ENOENT\)/);
    await writeFile(tokenFile, 'wrong-token\n', { mode: 0o600 });
    r = await agent().check();
    assert.equal(r.state, 'waiting');
    assert.match(r.reason ?? '', /unauthori[sz]ed|token/i);
    assert.equal(reboots, 0);

    await writeFile(tokenFile, 's3cret-token\n', { mode: 0o600 });
    r = await agent().check();
    assert.equal(r.state, 'rebooting', r.reason ?? '');
    assert.equal(reboots, 1);
    assert.ok(!server.lines.some((l) => l.includes('s3cret-token') || l.includes('wrong-token')), 'no token in the server log');
  } finally {
    await host.close();
    await f.dispose();
    await server.close();
    await etcd.stop();
  }
});

test('fleet_lock ca_file/cert_file/key_file: parsed as absolute paths, refused naming the file and key when wrong', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fleetperf-policy-'));
  const policy = async (text: string) => {
    await writeFile(join(dir, '50-fleet.yaml'), text);
    return loadUpdatesConfig(dir);
  };
  try {
    const c = await policy('fleet_lock: { base_url: "https://lock:3333", ca_file: /etc/atomhost/ca.crt, cert_file: /etc/atomhost/node.crt, key_file: /etc/atomhost/node.key }\n');
    assert.deepEqual(c.fleetLock, { baseUrl: 'https://lock:3333', group: 'default', tokenFile: null, caFile: '/etc/atomhost/ca.crt', certFile: '/etc/atomhost/node.crt', keyFile: '/etc/atomhost/node.key' });
    const bad: [string, RegExp][] = [
      ['fleet_lock: { base_url: "https://x/", ca_file: ca.crt }\n', /50-fleet\.yaml: fleet_lock\.ca_file: "ca\.crt" must be an absolute path/],
      ['fleet_lock: { base_url: "https://x/", cert_file: /n.crt }\n', /50-fleet\.yaml: fleet_lock\.key_file: .* is required with the other/],
      ['fleet_lock: { base_url: "https://x/", key_file: /n.key }\n', /50-fleet\.yaml: fleet_lock\.cert_file: .* is required with the other/],
      ['fleet_lock: { base_url: "http://x/", ca_file: /ca.crt }\n', /50-fleet\.yaml: fleet_lock\.base_url: "http:\/\/x\/?" must be an https URL/],
      ['fleet_lock: { base_url: "https://x/", ca_file: 3 }\n', /fleet_lock\.ca_file: 3 must be a non-empty string/],
    ];
    for (const [text, want] of bad) await assert.rejects(policy(text), want, text);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
