// A small etcd v3 client over the JSON gateway every etcd ≥ 3.4 serves on its client URL
// (/v3/kv/*, /v3/lease/*): no gRPC stack to load, so `atomhost` starts fast (issue 15).
// Keys and values are base64 on the wire and int64s are decimal strings; lease ids stay
// strings here because they do not fit a JS number. Each request tries the endpoints in
// turn starting with the last one that answered, so a member that is down costs one
// connection refusal (or one timeout), not an outage. Requests go through undici's
// request() over kept-alive connections (one Agent per client): global fetch() costs a
// WHATWG stream per answer, which under a fleet of requests was most of the CPU spent here.
// https:// members are spoken to with the TLS settings of --etcd-cacert/--etcd-cert/--etcd-key
// (fleet/config.ts); a handshake that fails says which of them to look at.
import type { Socket } from 'node:net';
import { Agent, buildConnector, request } from 'undici';
import { AtomhostError } from '../core/errors.js';

export class EtcdUnavailableError extends AtomhostError {
  constructor(endpoints: string[], why: string[], lead = 'no etcd member answered') {
    super('AH_ERR_REMOTE', `${lead} (${endpoints.join(', ')}): ${why.join('; ')}`, { details: { endpoints } });
    this.name = 'EtcdUnavailableError';
  }
}

/** Every member refused the TLS handshake, or was refused: a setting to fix, not an outage to wait out. */
export class EtcdTlsError extends EtcdUnavailableError {
  constructor(endpoints: string[], why: string[]) {
    super(endpoints, why, 'no etcd member completed the TLS handshake');
    this.name = 'EtcdTlsError';
  }
}

/** PEM: the CA of the members' certificates (default: the system's CAs) and this client's certificate and key (mTLS). */
export interface EtcdTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

export interface Compare {
  key: string;
  rangeEnd?: string;
  target: 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
  result: 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';
  /** revision or version number, value string, or lease id depending on target */
  operand: number | string;
}

export type Op =
  | { put: { key: string; value: string; lease?: string } }
  | { range: { key: string; rangeEnd?: string } }
  | { del: { key: string; rangeEnd?: string; prevKv?: boolean } };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** for each op: the range's kvs, or a delete's previous kvs when asked (prevKv); empty for put */
  ranges: KeyValue[][];
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The key just past every key that starts with `prefix` (etcd's "range_end" for a prefix). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const out = b.subarray(0, i + 1);
      out[i]! += 1;
      return out.toString('latin1');
    }
  }
  return '\0';
}

export interface EtcdClientOptions {
  /** per attempt on one member */
  attemptTimeoutMs?: number;
  /** a member that accepts no connection in this time is skipped (default 1 s) */
  connectTimeoutMs?: number;
  /** for https:// members */
  tls?: EtcdTls;
}

export class EtcdClient {
  private readonly endpoints: string[];
  private next = 0;
  private readonly attemptTimeoutMs: number;
  private readonly agent: Agent;
  private readonly tls: EtcdTls | undefined;
  /** TLS alerts seen on sockets, by local port, until the failed request picks its own up */
  private readonly alerts = new Map<number, Error & { code?: string }>();

  constructor(endpoints: string[], opts: EtcdClientOptions = {}) {
    if (endpoints.length === 0) throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', 'no etcd endpoint given');
    this.endpoints = endpoints.map((e) => e.replace(/\/+$/, ''));
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 3000;
    this.tls = opts.tls;
    const connector = buildConnector({ timeout: opts.connectTimeoutMs ?? 1000, ...opts.tls });
    // Under TLS 1.3 a member refuses a client certificate after the client's side of the
    // handshake is done: the alert arrives as an error on the socket, but undici reports only
    // "other side closed". Keep the alert so the failed request can say what it was.
    const connect: buildConnector.connector = (o, cb) =>
      connector(o, (err, socket) => {
        if (socket) {
          const port = (socket as Socket).localPort;
          if (port !== undefined) this.alerts.delete(port); // a port used again starts clean
          socket.once('error', (e: Error & { code?: string }) => {
            if (port === undefined || !/^ERR_SSL_/.test(e.code ?? '')) return;
            if (this.alerts.size >= 64) this.alerts.delete(this.alerts.keys().next().value!);
            this.alerts.set(port, e);
          });
        }
        if (err) cb(err, null);
        else cb(null, socket!);
      });
    this.agent = new Agent({ connections: 32, keepAliveTimeout: 30_000, connect });
  }

  /** Closes the kept-alive connections (a process that is done with etcd can then exit). */
  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Keys from `key` up to `rangeEnd` (or just `key`), now or as they were at `revision`. */
  async range(key: string, rangeEnd?: string, revision?: number): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call('/v3/kv/range', { key: b64(key), ...(rangeEnd ? { range_end: bytesB64(rangeEnd) } : {}), ...(revision ? { revision: String(revision) } : {}) });
    return { kvs: ((r.kvs as RawKv[] | undefined) ?? []).map(kv), revision: Number((r.header as { revision?: string })?.revision ?? 0) };
  }

  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const r = await this.call('/v3/kv/txn', { compare: compare.map(cmp), success: success.map(op), failure: failure.map(op) });
    const responses = (r.responses as Record<string, { kvs?: RawKv[]; prev_kvs?: RawKv[] }>[] | undefined) ?? [];
    return {
      succeeded: r.succeeded === true,
      revision: Number((r.header as { revision?: string })?.revision ?? 0),
      ranges: responses.map((x) => (x.response_range?.kvs ?? x.response_delete_range?.prev_kvs ?? []).map(kv)),
    };
  }

  /** A lease of `ttl` seconds; returns its id. */
  async leaseGrant(ttl: number): Promise<string> {
    const r = await this.call('/v3/lease/grant', { TTL: String(ttl) });
    if (typeof r.ID !== 'string') throw new AtomhostError('AH_ERR_REMOTE', `etcd granted no lease: ${String(r.error ?? '')}`);
    return r.ID;
  }

  /** Renews a lease to its full TTL; returns the TTL left, 0 when the lease is gone. */
  async leaseKeepAlive(id: string): Promise<number> {
    const r = await this.call('/v3/lease/keepalive', { ID: id });
    return Number((r.result as { TTL?: string } | undefined)?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    // A lease that is already gone is what we wanted.
    await this.call('/v3/lease/revoke', { ID: id }, true);
  }

  /** Seconds left on a lease, -1 when it is gone. */
  async leaseTimeToLive(id: string): Promise<number> {
    const r = await this.call('/v3/lease/timetolive', { ID: id });
    return Number(r.TTL ?? -1);
  }

  private async call(path: string, body: unknown, tolerateNotFound = false): Promise<Record<string, unknown>> {
    const why: string[] = [];
    let tlsFailures = 0;
    const n = this.endpoints.length;
    const start = this.next;
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n;
      const ep = this.endpoints[idx]!;
      let status: number;
      let text: string;
      try {
        const res = await request(ep + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          dispatcher: this.agent,
          headersTimeout: this.attemptTimeoutMs,
          bodyTimeout: this.attemptTimeoutMs,
        });
        status = res.statusCode;
        text = await res.body.text();
      } catch (err) {
        const e = err as Error & { code?: string; cause?: { code?: string; message?: string }; socket?: { localPort?: number; bytesRead?: number } };
        const port = e.socket?.localPort;
        const alert = port !== undefined ? this.alerts.get(port) : undefined;
        if (port !== undefined) this.alerts.delete(port);
        const tls = tlsFailure(alert ?? e, this.tls);
        if (tls) {
          tlsFailures++;
          why.push(`${ep}: ${tls}`);
          continue;
        }
        const timedOut = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
        // A member serving TLS closes a plain-HTTP connection without a word.
        const hint = e.code === 'UND_ERR_SOCKET' && ep.startsWith('http:') && e.socket?.bytesRead === 0 ? ' (closed without an answer: does this member serve TLS? then use https:// and --etcd-cacert)' : '';
        why.push(`${ep}: ${timedOut ? `no answer in ${this.attemptTimeoutMs} ms` : (e.code ?? e.cause?.code ?? e.cause?.message ?? e.message)}${hint}`);
        continue;
      }
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(text) as Record<string, unknown>;
      } catch {
        why.push(`${ep}: HTTP ${status}, not JSON`);
        continue;
      }
      if (status === 200) {
        this.next = idx;
        return doc;
      }
      const msg = String(doc.message ?? doc.error ?? text.slice(0, 200));
      if (tolerateNotFound && /not found/i.test(msg)) return doc;
      // A member without a leader or quorum answers 503/5xx: another member may have one.
      if (status >= 500) {
        // etcd's JSON gateway reaches the member's gRPC side with the member's own certificate;
        // under --client-cert-auth one without clientAuth usage fails it, every time, with
        // "connection closed" or, depending on timing, a gRPC transport error on the preface.
        const gatewayRefused = msg === 'connection closed' || /^connection error: .*transport: .*(client preface|connection reset|EOF)/.test(msg);
        const hint = ep.startsWith('https:') && gatewayRefused ? ' (with --client-cert-auth, the member certificate needs extendedKeyUsage clientAuth as well as serverAuth)' : '';
        why.push(`${ep}: ${msg}${hint}`);
        continue;
      }
      throw new AtomhostError('AH_ERR_REMOTE', `etcd ${ep}${path}: ${msg} (HTTP ${status})`);
    }
    if (tlsFailures === n) throw new EtcdTlsError(this.endpoints, why);
    throw new EtcdUnavailableError(this.endpoints, why);
  }
}

// Node's codes for a member's certificate that the CA given (or the system's) does not vouch for.
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** What a failed TLS handshake means for the one who set --etcd-cacert/--etcd-cert/--etcd-key; undefined when it was no TLS failure. */
export function tlsFailure(e: Error & { code?: string }, tls: EtcdTls | undefined): string | undefined {
  const code = e.code ?? '';
  // OpenSSL's "…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:file:line:…": its reason only.
  const what = `(${code}: ${/SSL routines:[^:]*:([^:]+)/.exec(e.message)?.[1] ?? e.message.split('\n')[0]!.trim()})`;
  if (UNTRUSTED.has(code)) {
    return tls?.ca
      ? `its TLS certificate is not signed by the CA of --etcd-cacert ${what}`
      : `its TLS certificate is not signed by a CA this system trusts: give the etcd CA with --etcd-cacert ${what}`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `its TLS certificate is not valid now ${what}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `its TLS certificate is not for this address: use a name or address of its subjectAltName in --etcd ${what}`;
  // An alert from the member: it wanted a client certificate and got none, or does not trust the one it got.
  if (/^ERR_SSL_.*ALERT_(BAD_CERTIFICATE|CERTIFICATE_\w+|UNKNOWN_CA|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/.test(code)) {
    return tls?.cert
      ? `it refused the client certificate of --etcd-cert (not signed by a CA it trusts, or not valid now) ${what}`
      : `it requires a client certificate: give --etcd-cert and --etcd-key ${what}`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return `it does not speak TLS on this port: an http:// member? ${what}`;
  return undefined;
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

function kv(r: RawKv): KeyValue {
  return {
    key: unb64(r.key),
    value: unb64(r.value),
    createRevision: Number(r.create_revision ?? 0),
    modRevision: Number(r.mod_revision ?? 0),
    version: Number(r.version ?? 0),
    lease: r.lease ?? '0',
  };
}

function bytesB64(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64');
}

function cmp(c: Compare): Record<string, unknown> {
  const field = { VERSION: 'version', CREATE: 'create_revision', MOD: 'mod_revision', VALUE: 'value', LEASE: 'lease' }[c.target];
  return {
    key: b64(c.key),
    ...(c.rangeEnd ? { range_end: bytesB64(c.rangeEnd) } : {}),
    target: c.target,
    result: c.result,
    [field]: c.target === 'VALUE' ? b64(String(c.operand)) : String(c.operand),
  };
}

function op(o: Op): Record<string, unknown> {
  if ('put' in o) return { request_put: { key: b64(o.put.key), value: b64(o.put.value), ...(o.put.lease ? { lease: o.put.lease } : {}) } };
  if ('range' in o) return { request_range: { key: b64(o.range.key), ...(o.range.rangeEnd ? { range_end: bytesB64(o.range.rangeEnd) } : {}) } };
  return { request_delete_range: { key: b64(o.del.key), ...(o.del.rangeEnd ? { range_end: bytesB64(o.del.rangeEnd) } : {}), ...(o.del.prevKv ? { prev_kv: true } : {}) } };
}
