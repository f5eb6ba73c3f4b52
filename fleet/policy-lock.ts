// The fleet lock of an update policy (`fleet_lock:` in /etc/atomhost/updates.d): the
// FleetLock client for this node, as atomhostd's update agent uses it.
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../core/errors.js';
import { FleetLockClient } from './client.js';
import { fleetNodeId } from './node-id.js';

export interface PolicyLock {
  baseUrl: string;
  group: string;
  /** The server's bearer token (`fleetlock serve --token-file`), read at each use so a rotated token is picked up. */
  tokenFile: string | null;
  /** PEM files for an https:// server: its CA, and this node's client certificate and key (mTLS) */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** A file the policy names, read at each use; a failure names the key and the file. */
async function readPolicyFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new InvalidArgumentError(`fleet_lock.${key} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { field: `fleet_lock.${key}` });
  }
}

export async function policyLock(cfg: PolicyLock, machineIdPath?: string): Promise<FleetLockClient> {
  const token = cfg.tokenFile ? (await readPolicyFile('token_file', cfg.tokenFile)).toString('utf8').trim() : undefined;
  const ca = cfg.caFile ? await readPolicyFile('ca_file', cfg.caFile) : undefined;
  const cert = cfg.certFile ? await readPolicyFile('cert_file', cfg.certFile) : undefined;
  const key = cfg.keyFile ? await readPolicyFile('key_file', cfg.keyFile) : undefined;
  return new FleetLockClient({ baseUrl: cfg.baseUrl, group: cfg.group, id: fleetNodeId(machineIdPath), token, ca, cert, key });
}
