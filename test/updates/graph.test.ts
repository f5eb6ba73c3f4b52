// The Cincinnati-style graph, fetched over HTTP from a server in the test: the next
// release along the edges, dead ends, barriers, rollout wariness, and hostile graphs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chooseUpdate, fetchGraph, type Graph } from '../../core/updates/graph.js';

const sum = (c: string) => c.repeat(64);
const P = 'org.fedoraproject.coreos.updates.';
let server: Server;
let base = '';
let body = '';
let status = 200;
const seen: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const serve = (g: unknown) => {
  body = typeof g === 'string' ? g : JSON.stringify(g);
  status = 200;
};
const cfg = () => ({ url: base, stream: 'stable', basearch: 'x86_64' });
const now = new Date('2026-11-25T10:00:00Z');
const epoch = now.getTime() / 1000;

test('the graph is fetched with basearch and stream; the newest target along the edges is chosen', async () => {
  serve({
    nodes: [
      { version: '1.0', payload: sum('a'), metadata: {} },
      { version: '2.0', payload: sum('b'), metadata: {} },
      { version: '3.0', payload: sum('c'), metadata: {} },
      { version: '9.0', payload: sum('d'), metadata: {} },
    ],
    edges: [[0, 1], [0, 2], [1, 2]], // no edge from 1.0 to 9.0: not a target
  });
  const g = await fetchGraph(cfg());
  assert.equal(seen.at(-1), '/v1/graph?basearch=x86_64&stream=stable');
  const c = chooseUpdate(g, { checksum: sum('a') }, 0.5, now);
  assert.equal(c.update?.version, '3.0');
  assert.equal(chooseUpdate(g, { checksum: sum('c') }, 0.5, now).update, null);
  const none = chooseUpdate(g, { checksum: sum('c') }, 0.5, now);
  assert.equal(!none.update && none.reason, 'no edge leads on from 3.0');
  const lost = chooseUpdate(g, { checksum: sum('e') }, 0.5, now);
  assert.equal(!lost.update && lost.reason, `the booted commit eeeeeeeeeeee is not in the graph`);
});

test('a barrier is never jumped over; dead-end targets are skipped; a dead-end booted node is reported', () => {
  const g: Graph = {
    nodes: [
      { version: '1.0', payload: sum('a'), metadata: { [`${P}deadend`]: 'true', [`${P}deadend_reason`]: 'https://example.invalid/issue/1' } },
      { version: '2.0', payload: sum('b'), metadata: { [`${P}barrier`]: 'true' } },
      { version: '3.0', payload: sum('c'), metadata: {} },
      { version: '2.5', payload: sum('f'), metadata: { 'io.atomhost.updates.deadend': 'true', 'org.fedoraproject.coreos.releases.age_index': '1' } },
    ],
    edges: [[0, 1], [0, 2], [0, 3], [1, 2]],
  };
  // age_index orders 2.5 between 1.0 and 2.0 here, by its metadata.
  g.nodes[0].metadata['org.fedoraproject.coreos.releases.age_index'] = '0';
  g.nodes[1].metadata['org.fedoraproject.coreos.releases.age_index'] = '2';
  g.nodes[2].metadata['org.fedoraproject.coreos.releases.age_index'] = '3';
  const c = chooseUpdate(g, { checksum: sum('a') }, 0, now);
  assert.equal(c.update?.version, '2.0', 'stops at the barrier although 3.0 has an edge');
  assert.equal(c.deadEnd, 'https://example.invalid/issue/1');
  assert.equal(chooseUpdate(g, { checksum: sum('b') }, 0, now).update?.version, '3.0', 'from the barrier on');
  const onlyDead: Graph = { nodes: [g.nodes[2], g.nodes[3]], edges: [[0, 1]] };
  onlyDead.nodes = [{ ...g.nodes[2], metadata: { 'org.fedoraproject.coreos.releases.age_index': '0' } }, { ...g.nodes[3], metadata: { ...g.nodes[3].metadata } }];
  const d = chooseUpdate(onlyDead, { checksum: sum('c') }, 0, now);
  assert.equal(!d.update && d.reason, 'every release after 3.0 is a dead end');
});

test('rollout wariness: a node takes a release once its rollout has reached the node', () => {
  const rollout = (start: number, value: string, minutes: string) => ({ [`${P}start_epoch`]: String(start), [`${P}start_value`]: value, [`${P}duration_minutes`]: minutes });
  const g: Graph = {
    nodes: [
      { version: '1.0', payload: sum('a'), metadata: {} },
      { version: '2.0', payload: sum('b'), metadata: {} },
      { version: '3.0', payload: sum('c'), metadata: rollout(epoch - 30 * 60, '0.2', '60') }, // 0.2 + 0.8 * 0.5 = 0.6 now
    ],
    edges: [[0, 1], [0, 2]],
  };
  assert.equal(chooseUpdate(g, { checksum: sum('a') }, 0.1, now).update?.version, '3.0', 'an eager node');
  assert.equal(chooseUpdate(g, { checksum: sum('a') }, 0.6, now).update?.version, '3.0', 'exactly at the rollout');
  assert.equal(chooseUpdate(g, { checksum: sum('a') }, 0.7, now).update?.version, '2.0', 'a wary node takes the older release that is out for all');
  assert.equal(chooseUpdate(g, { checksum: sum('a') }, 1, new Date((epoch + 3600) * 1000)).update?.version, '3.0', 'everyone once the duration is over');
  g.edges = [[0, 2]];
  const waiting = chooseUpdate(g, { checksum: sum('a') }, 0.9, now);
  assert.equal(!waiting.update && waiting.reason, "3.0 is rolling out (60% of nodes, this node's wariness is 0.9)");
  g.nodes[2].metadata = rollout(epoch + 60, '0.5', '60');
  assert.equal(chooseUpdate(g, { checksum: sum('a') }, 0, now).update, null, 'not before its start, not even for the most eager node');
});

test('hostile graphs are refused naming the field', async () => {
  const cases: [unknown, RegExp][] = [
    ['{"nodes": [', /not JSON/],
    [[1, 2], /not a JSON object with nodes and edges/],
    [{ nodes: {}, edges: [] }, /nodes must be a list/],
    [{ nodes: [], edges: 'x' }, /edges must be a list/],
    [{ nodes: [{ version: '1', payload: 'main' }], edges: [] }, /nodes\[0\]\.payload "main" is not an OSTree commit checksum/],
    [{ nodes: [{ version: '', payload: sum('a') }], edges: [] }, /nodes\[0\]\.version must be a non-empty string/],
    [{ nodes: [{ version: '1', payload: sum('a'), metadata: { k: 1 } }], edges: [] }, /nodes\[0\]\.metadata\.k must be a string/],
    [{ nodes: [{ version: '1', payload: sum('a') }], edges: [[0, 1]] }, /edges\[0\] \[0,1\] must be \[from, to\], indexes of nodes \(0\.\.0\)/],
    [{ nodes: [{ version: '1', payload: sum('a') }], edges: [[0, -1]] }, /edges\[0\]/],
    [{ nodes: [{ version: '1', payload: sum('a') }], edges: [[0, 0, 0]] }, /edges\[0\]/],
  ];
  for (const [doc, want] of cases) {
    serve(doc);
    await assert.rejects(fetchGraph(cfg()), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'AH_ERR_REMOTE');
      assert.match(err.message, new RegExp(`^update graph http://127\\.0\\.0\\.1:\\d+/v1/graph\\?basearch=x86_64&stream=stable: `));
      assert.match(err.message, want);
      return true;
    });
  }
  status = 404;
  await assert.rejects(fetchGraph(cfg()), /: HTTP 404$/);
  // A port nobody listens on (taken, then closed).
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', () => r()));
  const port = (gone.address() as AddressInfo).port;
  await new Promise<void>((r) => gone.close(() => r()));
  await assert.rejects(fetchGraph({ ...cfg(), url: `http://127.0.0.1:${port}` }), (err: Error) => err.message.startsWith(`update graph http://127.0.0.1:${port}/v1/graph?`) && /: fetch failed \(connect ECONNREFUSED/.test(err.message));
});
