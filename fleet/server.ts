// The FleetLock server: airlock's HTTP protocol over the etcd semaphore of fleet/semaphore.ts,
// plus what airlock lacks: a lease per lock, bearer-token auth, TLS with optional client
// certificates (mTLS) and per-group slots with a default. It holds no state of its own, so
// several servers can share one etcd.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AtomhostError } from '../core/errors.js';
import { EtcdUnavailableError, type EtcdClient } from './etcd.js';
import { Metrics, type Outcome } from './metrics.js';
import { MAX_BODY_BYTES, PRE_REBOOT, PROTOCOL_HEADER, RequestRefused, STEADY_STATE, parseRequest, type FleetLockKind } from './protocol.js';
import { Semaphore } from './semaphore.js';

export interface FleetLockServerOptions {
  etcd: EtcdClient;
  /** slots of every group not in `groups` */
  slots: number;
  groups?: Map<string, number>;
  /** lease of each held lock, seconds */
  lockTtlSeconds: number;
  token?: string;
  /** serve HTTPS; with clientCa, only clients with a certificate signed by it get past the handshake */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** one line per decision; default stderr */
  log?: (line: string) => void;
}

/** The HTTP(S) server; stop() closes it and revokes the etcd leases it granted ahead. */
export type FleetLockServer = (Server | TlsServer) & { stop(): Promise<void> };

export function createFleetLockServer(opts: FleetLockServerOptions): FleetLockServer {
  const sem = new Semaphore(opts.etcd);
  const metrics = new Metrics();
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tokenHash = opts.token !== undefined ? sha256(opts.token) : undefined;
  const slotsOf = (g: string) => opts.groups?.get(g) ?? opts.slots;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const endpoint = path === PRE_REBOOT ? 'pre-reboot' : path === STEADY_STATE ? 'steady-state' : path === '/metrics' ? 'metrics' : undefined;
    if (!endpoint) return refuse(res, 404, 'not_found', `no such endpoint ${path.slice(0, 100)} (FleetLock serves POST ${PRE_REBOOT}, POST ${STEADY_STATE}, GET /metrics)`);
    if (tokenHash && !authorized(req.headers.authorization, tokenHash)) {
      metrics.count(endpoint === 'metrics' ? 'other' : endpoint, 'unauthorized');
      log(`fleetlock: ${endpoint} refused: missing or wrong bearer token (from ${req.socket.remoteAddress})`);
      res.setHeader('www-authenticate', 'Bearer');
      return refuse(res, 401, 'unauthorized', 'missing or wrong "Authorization: Bearer" token');
    }
    if (endpoint === 'metrics') {
      if (req.method !== 'GET') return refuse(res, 405, 'method_not_allowed', 'use GET /metrics');
      return sendMetrics(res);
    }
    if (req.method !== 'POST') return refuse(res, 405, 'method_not_allowed', `use POST ${path}`);
    let params;
    try {
      params = parseRequest(req.headers[PROTOCOL_HEADER], await readBody(req));
    } catch (err) {
      if (!(err instanceof RequestRefused)) throw err;
      metrics.count(endpoint, 'refused');
      log(`fleetlock: ${endpoint} refused: ${err.value}`);
      return refuse(res, err.status, err.kind, err.value);
    }
    const { id, group } = params;
    try {
      if (endpoint === 'pre-reboot') {
        const slots = slotsOf(group);
        const r = await sem.acquire(group, id, slots, opts.lockTtlSeconds);
        if (r.granted) {
          const outcome: Outcome = r.refreshed ? 'refreshed' : 'granted';
          metrics.count(endpoint, outcome);
          log(`fleetlock: pre-reboot group=${group} id=${id} ${outcome} (${r.holders}/${slots} held, lease ${opts.lockTtlSeconds}s)`);
          return ok(res);
        }
        metrics.count(endpoint, 'full');
        log(`fleetlock: pre-reboot group=${group} id=${id} refused: all ${slots} slots held`);
        return refuse(res, 409, 'failed_lock', `all ${slots} semaphore slots of group ${group} currently locked`);
      }
      const held = await sem.release(group, id);
      metrics.count(endpoint, held ? 'released' : 'not_held');
      log(`fleetlock: steady-state group=${group} id=${id} ${held ? 'released' : 'held nothing'}`);
      return ok(res);
    } catch (err) {
      metrics.count(endpoint, 'etcd_error');
      const msg = err instanceof Error ? err.message : String(err);
      log(`fleetlock: ${endpoint} group=${group} id=${id} failed: ${msg}`);
      if (err instanceof EtcdUnavailableError) return refuse(res, 503, 'etcd_unavailable', msg);
      if (err instanceof AtomhostError) return refuse(res, 503, 'etcd_error', msg);
      throw err;
    }
  };

  const sendMetrics = async (res: ServerResponse) => {
    let up = true;
    const counts = new Map<string, { slots: number; holders: number }>();
    counts.set('default', { slots: slotsOf('default'), holders: 0 });
    for (const [g, n] of opts.groups ?? []) counts.set(g, { slots: n, holders: 0 });
    try {
      for (const g of await sem.snapshot()) counts.set(g.group, { slots: slotsOf(g.group), holders: g.holders.length });
    } catch {
      up = false;
    }
    const groups = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([group, v]) => ({ group, ...v }));
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(metrics.render(groups, up));
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      log(`fleetlock: internal error: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) refuse(res, 500, 'generic_error', 'internal error');
      else res.destroy();
    });
  };
  const t = opts.tls;
  const server: Server | TlsServer = t
    ? createTlsServer({ cert: t.cert, key: t.key, ...(t.clientCa ? { ca: t.clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, listener)
    : createServer(listener);
  // A client refused at the handshake (no certificate, another CA) never reaches handle(): say why here.
  server.on('tlsClientError', (err: Error & { code?: string }, socket: { remoteAddress?: string }) => {
    log(`fleetlock: TLS handshake from ${socket.remoteAddress ?? '?'} refused: ${err.code ?? ''} ${err.message}`.trimEnd());
  });
  return Object.assign(server, {
    stop: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await sem.close();
    },
  });
}

function ok(res: ServerResponse): void {
  res.writeHead(200, { 'content-length': '0' });
  res.end();
}

function refuse(res: ServerResponse, status: number, kind: FleetLockKind, value: string): void {
  const body = JSON.stringify({ kind, value });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => new RequestRefused(413, 'body_too_large', `request body is larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(tooLarge());
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant time: both sides are hashed to 32 bytes first, so neither length nor content leaks. */
function authorized(header: string | undefined, tokenHash: Buffer): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return timingSafeEqual(sha256(m ? m[1]! : ''), tokenHash) && m !== null;
}
