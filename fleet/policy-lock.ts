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
}

export async function policyLock(cfg: PolicyLock, machineIdPath?: string): Promise<FleetLockClient> {
  let token: string | undefined;
  if (cfg.tokenFile) {
    try {
      token = (await readFile(cfg.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new InvalidArgumentError(`fleet_lock.token_file ${cfg.tokenFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { field: 'fleet_lock.token_file' });
    }
  }
  return new FleetLockClient({ baseUrl: cfg.baseUrl, group: cfg.group, id: fleetNodeId(machineIdPath), token });
}
