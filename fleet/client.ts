// The FleetLock client the update agent calls before a reboot (pre-reboot: take a slot) and
// once the new revision passed its health gate (steady-state: give it back). It speaks the
// wire format of fleet/protocol.ts, so it works against airlock and poseidon/fleetlock too.
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
}

export class FleetLockClient {
  private readonly base: URL;
  private readonly body: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

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
  }

  /** POST {base}/v1/pre-reboot: true when the slot is granted (200), false when every slot is held. */
  async preReboot(): Promise<boolean> {
    const r = await this.post(PRE_REBOOT);
    if (r.ok) return true;
    // airlock answers 500 and ours 409 for a full group; the kind is what both agree on.
    if (r.error.kind === 'failed_lock') return false;
    throw r.error;
  }

  /** POST {base}/v1/steady-state: resolves when released (200; also when this node held nothing). */
  async steadyState(): Promise<void> {
    const r = await this.post(STEADY_STATE);
    if (!r.ok) throw r.error;
  }

  private async post(path: string): Promise<{ ok: true } | { ok: false; error: FleetLockError }> {
    const url = new URL(path.slice(1), this.base).toString();
    const headers: Record<string, string> = { [PROTOCOL_HEADER]: 'true', 'content-type': 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers, body: this.body, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' });
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      const why = e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : `${e.message}${causeText(e)}`;
      throw new FleetLockError(url, 'request_failed', why, undefined, err);
    }
    if (res.ok) return { ok: true }; // 200; Zincati also takes any 2xx
    let kind = 'generic_error';
    let value = text.slice(0, 200).trim() || res.statusText;
    try {
      const doc = JSON.parse(text) as { kind?: unknown; value?: unknown };
      if (typeof doc.kind === 'string') kind = doc.kind;
      if (typeof doc.value === 'string') value = doc.value;
    } catch {
      // Not a FleetLock server (a proxy's HTML page, say): the status and text say enough.
    }
    return { ok: false, error: new FleetLockError(url, kind, value, res.status) };
  }
}

function causeText(e: Error): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message ?? ''})` : '';
}
