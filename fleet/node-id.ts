// The node's FleetLock id: stable across boots and upgrades, but not /etc/machine-id in
// clear (a lock server's logs and etcd keys should not hand out the machine-id, which other
// software treats as confidential). Derived as systemd's sd_id128_get_machine_app_specific()
// does and Zincati uses: HMAC-SHA256 keyed by the machine id over an application id, the first
// 16 bytes made a version-4 UUID, printed as 32 lowercase hex digits. The application id is
// atomhost's own, so this id differs from Zincati's for the same machine.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';

/** atomhost's FleetLock application id (random, fixed forever: changing it changes every node id). */
const APP_ID = Buffer.from('5c1f0e9a7d2b4e36a8c4b1d07e93f260', 'hex');

export function fleetNodeId(machineIdPath = '/etc/machine-id'): string {
  let text: string;
  try {
    text = readFileSync(machineIdPath, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read the machine id from ${machineIdPath}: ${(err as Error).message}`, { file: machineIdPath });
  }
  const hex = text.trim().toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex) || /^0+$/.test(hex)) {
    throw new InvalidArgumentError(`${machineIdPath} does not hold a machine id (32 hex digits, not all zero)`, { file: machineIdPath });
  }
  const mac = createHmac('sha256', Buffer.from(hex, 'hex')).update(APP_ID).digest().subarray(0, 16);
  mac[6] = (mac[6]! & 0x0f) | 0x40;
  mac[8] = (mac[8]! & 0x3f) | 0x80;
  return mac.toString('hex');
}
