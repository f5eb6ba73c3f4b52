// The FleetLock client the update agent calls before a reboot (pre-reboot: take a slot) and
// once the new revision passed its health gate (steady-state: give it back). It speaks the
// wire format of fleet/protocol.ts, so it works against airlock and poseidon/fleetlock too.
// Requests go through undici's request() (not fetch(): a WHATWG stream and an AbortSignal per
// request cost a fleet simulated in one process most of its CPU), over kept-alive connections.
import { Agent, request } from 'undici';
import { InvalidArgumentError } from '../core/errors.js';
import {
  DEFAULT_GROUP,
  FleetLockError,
  GROUP_RE,
  ID_RE,
  PRE_REBOOT,
  PROTOCOL_HEADER,
  STEADY_STATE,
  encodeBody,
} from './protocol.js';

export interface FleetLockOptions {
  baseUrl: string;
  group?: string;
  id: string;
  token?: string;
  timeoutMs?: number;
  /** PEM: the CA that signed the server's certificate (https:// base URL; default: the system's CAs) */
  ca?: string | Buffer;
  /** PEM: this node's client certificate and its key, for a server with --client-ca (mTLS) */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** Clients without TLS settings of their own share one pool of connections. */
let sharedAgent: Agent | undefined;

export class FleetLockClient {
  private readonly base: URL;
  private readonly body: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent: Agent;

  constructor(opts: FleetLockOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new InvalidArgumentError(`FleetLock base URL ${JSON.stringify(opts.baseUrl)} is not a URL`, { field: 'baseUrl' });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new InvalidArgumentError(`FleetLock base URL ${opts.baseUrl} must be http:// or https://`, { field: 'baseUrl' });
    }
    // The base is a directory: http://lock/ and http://lock both give http://lock/v1/pre-reboot.
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    const group = opts.group ?? DEFAULT_GROUP;
    if (!GROUP_RE.test(group)) throw new InvalidArgumentError(`FleetLock group ${JSON.stringify(group)} does not match ${GROUP_RE.source}`, { field: 'group' });
    if (!ID_RE.test(opts.id)) throw new InvalidArgumentError(`FleetLock node id ${JSON.stringify(opts.id)} is not [A-Za-z0-9._:-]{1,128}`, { field: 'id' });
    this.base = base;
    this.body = encodeBody({ id: opts.id, group });
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    if ((opts.cert === undefined) !== (opts.key === undefined)) {
      throw new InvalidArgumentError('FleetLock client certificate: cert and key go together', { field: opts.cert === undefined ? 'cert' : 'key' });
    }
    const tls = opts.ca !== undefined || opts.cert !== undefined;
    if (tls && base.protocol !== 'https:') throw new InvalidArgumentError(`FleetLock base URL ${opts.baseUrl}: TLS settings (ca, cert, key) need an https:// URL`, { field: 'baseUrl' });
    const connect = { timeout: Math.min(this.timeoutMs, 10_000) };
    this.agent = tls
      ? new Agent({ keepAliveTimeout: 4000, connect: { ...connect, ...(opts.ca !== undefined ? { ca: opts.ca } : {}), ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}) } })
      : (sharedAgent ??= new Agent({ keepAliveTimeout: 4000, connect }));
  }

  /** POST {base}/v1/pre-reboot: true when the slot is granted (200), false when every slot is held. */
  async preReboot(): Promise<boolean> {
    const r = await this.post(PRE_REBOOT);
    if (r.ok) return true;
    // airlock answers 500 and ours 409 for a full group; the kind is what both agree on.
    if (r.kind === 'failed_lock') return false;
    throw new FleetLockError(r.url, r.kind, r.value, r.status);
  }

  /** POST {base}/v1/steady-state: resolves when released (200; also when this node held nothing). */
  async steadyState(): Promise<void> {
    const r = await this.post(STEADY_STATE);
    if (!r.ok) throw new FleetLockError(r.url, r.kind, r.value, r.status);
  }

  /** The answer; a refusal as plain data (a full group is routine, not worth an Error's stack). */
  private async post(path: string): Promise<{ ok: true } | { ok: false; url: string; kind: string; value: string; status: number }> {
    const url = new URL(path.slice(1), this.base).toString();
    const headers: Record<string, string> = { [PROTOCOL_HEADER]: 'true', 'content-type': 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let status: number;
    let text: string;
    try {
      // No redirects are followed (undici's default): a lock server does not send any.
      const res = await request(url, { method: 'POST', headers, body: this.body, dispatcher: this.agent, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as Error & { code?: string };
      const timedOut = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT';
      const why = timedOut ? `no answer within ${this.timeoutMs} ms` : `${e.message}${e.code && !e.message.includes(e.code) ? ` (${e.code})` : ''}${causeText(e)}`;
      throw new FleetLockError(url, 'request_failed', why, undefined, err);
    }
    if (status >= 200 && status < 300) return { ok: true }; // 200; Zincati also takes any 2xx
    let kind = 'generic_error';
    let value = text.slice(0, 200).trim() || `HTTP ${status}`;
    try {
      const doc = JSON.parse(text) as { kind?: unknown; value?: unknown };
      if (typeof doc.kind === 'string') kind = doc.kind;
      if (typeof doc.value === 'string') value = doc.value;
    } catch {
      // Not a FleetLock server (a proxy's HTML page, say): the status and text say enough.
    }
    return { ok: false, url, kind, value, status };
  }
}

function causeText(e: Error): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message ?? ''})` : '';
}
