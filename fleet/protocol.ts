// The FleetLock wire format (Zincati's client, airlock's server): POST {base}/v1/pre-reboot and
// {base}/v1/steady-state with the header `fleet-lock-protocol: true` and the body
// {"client_params":{"id":…,"group":…}}; 200 means granted/released, anything else carries
// {"kind":…,"value":…}. One module for it so the client and the server cannot drift apart.
import { AtomhostError } from '../core/errors.js';

export const PROTOCOL_HEADER = 'fleet-lock-protocol';
export const PRE_REBOOT = '/v1/pre-reboot';
export const STEADY_STATE = '/v1/steady-state';
export const DEFAULT_GROUP = 'default';
/** Zincati's group rule (identity/mod.rs VALID_GROUP). */
export const GROUP_RE = /^[a-zA-Z0-9.-]+$/;
/** Node ids are opaque to the server, but bounded: they become etcd keys and log fields. */
export const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** Zincati's body is ~80 bytes; anything near this bound is not a FleetLock client. */
export const MAX_BODY_BYTES = 8192;

/**
 * Error kinds. invalid_client_identity, failed_lock and generic_error are airlock's names (internal/server/*.go), so a tool written
 * against airlock reads ours the same way; the others are cases airlock does not have.
 */
export type FleetLockKind =
  | 'invalid_client_identity' // bad header, JSON, id or group (400)
  | 'failed_lock' // every slot of the group is held (409)
  | 'etcd_unavailable' // no etcd member answered: never a grant (503)
  | 'etcd_error' // etcd answered with an error, or the semaphore kept racing (503)
  | 'body_too_large' // 413
  | 'unauthorized' // 401
  | 'not_found' // 404
  | 'method_not_allowed' // 405
  | 'generic_error';

export interface WireError {
  kind: string;
  value: string;
}

export interface ClientParams {
  id: string;
  group: string;
}

/** A request the server refuses: status, kind and a value that names the field. */
export class RequestRefused extends Error {
  constructor(
    readonly status: number,
    readonly kind: FleetLockKind,
    readonly value: string,
  ) {
    super(value);
    this.name = 'RequestRefused';
  }
}

/** The error a FleetLock client throws: the server's kind and value, or what went wrong before one answered. */
export class FleetLockError extends AtomhostError {
  readonly kind: string;
  readonly value: string;
  readonly status: number | undefined;

  constructor(url: string, kind: string, value: string, status?: number, cause?: unknown) {
    const where = status === undefined ? 'no answer' : `HTTP ${status}`;
    super('AH_ERR_REMOTE', `FleetLock server ${url}: ${kind}: ${value} (${where})`, { cause, details: { url, kind, value, status } });
    this.name = 'FleetLockError';
    this.kind = kind;
    this.value = value;
    this.status = status;
  }
}

export function encodeBody(p: ClientParams): string {
  return JSON.stringify({ client_params: { id: p.id, group: p.group } });
}

/** Validates a request's header and body; throws RequestRefused naming what is wrong. */
export function parseRequest(headerValue: string | string[] | undefined, body: string): ClientParams {
  if (headerValue !== 'true') {
    throw new RequestRefused(400, 'invalid_client_identity', `missing or wrong '${PROTOCOL_HEADER}' header (must be "true")`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new RequestRefused(400, 'invalid_client_identity', `malformed JSON body: ${(err as Error).message}`);
  }
  const cp = isObject(doc) ? doc.client_params : undefined;
  if (!isObject(cp)) throw new RequestRefused(400, 'invalid_client_identity', 'body has no "client_params" object');
  const { id, group } = cp;
  if (typeof id !== 'string' || id === '') throw new RequestRefused(400, 'invalid_client_identity', 'client_params.id is missing or empty');
  if (!ID_RE.test(id)) throw new RequestRefused(400, 'invalid_client_identity', `client_params.id ${JSON.stringify(id.slice(0, 64))} is not [A-Za-z0-9._:-]{1,128}`);
  if (group !== undefined && typeof group !== 'string') throw new RequestRefused(400, 'invalid_client_identity', 'client_params.group must be a string');
  const g = group === undefined || group === '' ? DEFAULT_GROUP : group;
  if (!GROUP_RE.test(g) || g.length > 128) {
    throw new RequestRefused(400, 'invalid_client_identity', `client_params.group ${JSON.stringify(g.slice(0, 64))} does not match ${GROUP_RE.source}`);
  }
  return { id, group: g };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
