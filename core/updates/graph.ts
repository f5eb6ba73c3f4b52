// A Cincinnati-style update graph (the protocol of Fedora CoreOS's update service, which
// Zincati reads): GET {url}/v1/graph?basearch=…&stream=… →
// {nodes: [{version, payload, metadata}], edges: [[from, to], …]} (indexes into nodes).
// The payload is an OSTree commit checksum (stack manifest URLs are not supported).
// Metadata keys honored (FCOS's names; the same keys under io.atomhost.updates. too):
//   ….updates.deadend ("true"), ….updates.deadend_reason    the node leads nowhere
//   ….updates.barrier ("true")                               every update must stop here
//   ….updates.start_epoch, ….updates.start_value, ….updates.duration_minutes   the rollout
//   org.fedoraproject.coreos.releases.age_index              the order of releases
import { AtomhostError } from '../errors.js';

export interface GraphNode {
  version: string;
  payload: string;
  metadata: Record<string, string>;
}
export interface Graph {
  nodes: GraphNode[];
  edges: [number, number][];
}

const CHECKSUM = /^[0-9a-f]{64}$/;
const MAX_BYTES = 8 * 1024 * 1024;

export class GraphError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('AH_ERR_REMOTE', message, { details });
    this.name = 'GraphError';
  }
}

function meta(node: GraphNode, key: string): string | undefined {
  return node.metadata[`org.fedoraproject.coreos.updates.${key}`] ?? node.metadata[`io.atomhost.updates.${key}`];
}
const ageIndex = (n: GraphNode, i: number): number => {
  const v = Number(n.metadata['org.fedoraproject.coreos.releases.age_index'] ?? n.metadata['io.atomhost.releases.age_index']);
  return Number.isFinite(v) ? v : i;
};

/** Checks a parsed document; every bad field is named with its index. */
export function parseGraph(doc: unknown, source: string): Graph {
  const bad = (what: string): never => {
    throw new GraphError(`update graph ${source}: ${what}`, { source });
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('not a JSON object with nodes and edges');
  const { nodes, edges } = doc as { nodes?: unknown; edges?: unknown };
  if (!Array.isArray(nodes)) bad('nodes must be a list');
  if (!Array.isArray(edges)) bad('edges must be a list');
  const out: Graph = { nodes: [], edges: [] };
  (nodes as unknown[]).forEach((n, i) => {
    if (typeof n !== 'object' || n === null) bad(`nodes[${i}] is not an object`);
    const { version, payload, metadata } = n as Record<string, unknown>;
    if (typeof version !== 'string' || !version || version.length > 256) bad(`nodes[${i}].version must be a non-empty string`);
    if (typeof payload !== 'string' || !CHECKSUM.test(payload)) bad(`nodes[${i}].payload ${JSON.stringify(payload)?.slice(0, 80)} is not an OSTree commit checksum (64 hex digits)`);
    const md: Record<string, string> = {};
    if (metadata !== undefined) {
      if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) bad(`nodes[${i}].metadata must be an object of strings`);
      for (const [k, v] of Object.entries(metadata as object)) {
        if (typeof v !== 'string') bad(`nodes[${i}].metadata.${k} must be a string`);
        md[k] = v as string;
      }
    }
    out.nodes.push({ version: version as string, payload: payload as string, metadata: md });
  });
  (edges as unknown[]).forEach((e, i) => {
    if (!Array.isArray(e) || e.length !== 2 || !e.every((x) => Number.isInteger(x) && x >= 0 && x < out.nodes.length)) bad(`edges[${i}] ${JSON.stringify(e)?.slice(0, 40)} must be [from, to], indexes of nodes (0..${out.nodes.length - 1})`);
    const [a, b] = e as [number, number];
    out.edges.push([a, b]);
  });
  return out;
}

export async function fetchGraph(cfg: { url: string; stream: string; basearch: string }, signal?: AbortSignal): Promise<Graph> {
  const u = new URL(`${cfg.url}/v1/graph`);
  u.searchParams.set('basearch', cfg.basearch);
  u.searchParams.set('stream', cfg.stream);
  const source = u.toString();
  let res: Response;
  try {
    res = await fetch(u, { headers: { accept: 'application/json' }, signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause?.message;
    throw new GraphError(`update graph ${source}: ${(err as Error).message}${cause ? ` (${cause})` : ''}`, { source });
  }
  if (!res.ok) throw new GraphError(`update graph ${source}: HTTP ${res.status}`, { source, status: res.status });
  if (Number(res.headers.get('content-length') ?? 0) > MAX_BYTES) throw new GraphError(`update graph ${source}: larger than ${MAX_BYTES} bytes`, { source });
  const text = await res.text();
  if (text.length > MAX_BYTES) throw new GraphError(`update graph ${source}: larger than ${MAX_BYTES} bytes`, { source });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new GraphError(`update graph ${source}: not JSON (${(err as Error).message})`, { source });
  }
  return parseGraph(doc, source);
}

/** How far a node's rollout has gone (0..1; -1 before it starts) at `now`: start_value rising linearly to 1 over duration_minutes from start_epoch. */
export function rolloutProgress(node: GraphNode, now: Date): number {
  const epoch = Number(meta(node, 'start_epoch'));
  const duration = Number(meta(node, 'duration_minutes'));
  if (!Number.isFinite(epoch) || !Number.isFinite(duration)) return 1; // no rollout: everyone
  const start = Math.min(1, Math.max(0, Number(meta(node, 'start_value') ?? 0) || 0));
  const elapsed = now.getTime() / 1000 - epoch;
  if (elapsed < 0) return -1; // not started: no node yet
  if (duration <= 0) return 1;
  return start + (1 - start) * Math.min(1, elapsed / (duration * 60));
}

export type Choice =
  | { update: GraphNode; booted: GraphNode; deadEnd: string | null }
  | { update: null; booted: GraphNode | null; deadEnd: string | null; reason: string };

/**
 * The next release from the booted one: among the targets of its edges, newest first,
 * never past a barrier (the oldest barrier newer than the booted release caps the
 * choice), skipping dead-end targets, and only once the target's rollout has reached
 * this node's wariness (0 eager … 1 wary).
 */
export function chooseUpdate(graph: Graph, booted: { checksum: string }, wariness: number, now: Date): Choice {
  const from = graph.nodes.findIndex((n) => n.payload === booted.checksum);
  if (from < 0) return { update: null, booted: null, deadEnd: null, reason: `the booted commit ${booted.checksum.slice(0, 12)} is not in the graph` };
  const self = graph.nodes[from];
  const deadEnd = meta(self, 'deadend') === 'true' ? meta(self, 'deadend_reason') || 'the booted release is a dead end' : null;
  const age = (i: number) => ageIndex(graph.nodes[i], i);
  let targets = [...new Set(graph.edges.filter(([a, b]) => a === from && b !== from).map(([, b]) => b))].filter((i) => age(i) > age(from)).sort((a, b) => age(b) - age(a));
  if (!targets.length) return { update: null, booted: self, deadEnd, reason: `no edge leads on from ${self.version}` };
  const barriers = targets.filter((i) => meta(graph.nodes[i], 'barrier') === 'true');
  if (barriers.length) {
    const cap = Math.min(...barriers.map(age));
    targets = targets.filter((i) => age(i) <= cap);
  }
  targets = targets.filter((i) => meta(graph.nodes[i], 'deadend') !== 'true');
  if (!targets.length) return { update: null, booted: self, deadEnd, reason: `every release after ${self.version} is a dead end` };
  for (const i of targets) if (rolloutProgress(graph.nodes[i], now) >= wariness) return { update: graph.nodes[i], booted: self, deadEnd };
  const newest = graph.nodes[targets[0]];
  return { update: null, booted: self, deadEnd, reason: `${newest.version} is rolling out (${Math.round(Math.max(0, rolloutProgress(newest, now)) * 100)}% of nodes, this node's wariness is ${wariness})` };
}
