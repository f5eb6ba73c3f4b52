// The reboot semaphore in etcd: per group, one key per holder, each attached to its own etcd
// lease, and a guard key whose mod_revision every grant compares and bumps.
//   /atomhost/fleetlock/v1/<group>/sem              {"slots":N}         (guard)
//   /atomhost/fleetlock/v1/<group>/holders/<id>     {"id","since",...}  (lease: --lock-ttl)
// Why a guard: etcd cannot compare a count, so a grant reads the holders and the guard in one
// snapshot and commits only if the guard did not move since. Every grant moves it, so two
// grants decided on the same snapshot cannot both commit, whichever server process made them.
// Releases and lease expiry only remove holders, which can only make a decision conservative.
import { setTimeout as sleep } from 'node:timers/promises';
import { AtomhostError } from '../core/errors.js';
import { prefixEnd, type EtcdClient, type KeyValue } from './etcd.js';

export const KEY_ROOT = '/atomhost/fleetlock/v1/';
const guardKey = (group: string) => `${KEY_ROOT}${group}/sem`;
const holdersPrefix = (group: string) => `${KEY_ROOT}${group}/holders/`;
const holderKey = (group: string, id: string) => `${holdersPrefix(group)}${id}`;

/** Grant attempts lost to other writers before giving up (each is a fresh, correct decision). */
const MAX_ATTEMPTS = 64;

export interface HolderRecord {
  id: string;
  group: string;
  /** when the slot was first granted (ms since the epoch, the granting server's clock) */
  since: number;
}

export type AcquireResult =
  | { granted: true; refreshed: boolean; holders: number }
  | { granted: false; holders: number };

export class Semaphore {
  constructor(private readonly etcd: EtcdClient) {}

  /**
   * RecursiveLock: the holder asking again is granted (and its lease renewed); anyone else gets
   * a slot only while fewer than `slots` are held.
   */
  async acquire(group: string, id: string, slots: number, ttlSeconds: number): Promise<AcquireResult> {
    let lease: string | undefined;
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const snap = await this.etcd.txn([], [{ range: { key: guardKey(group) } }, { range: { key: holdersPrefix(group), rangeEnd: prefixEnd(holdersPrefix(group)) } }]);
        const guardRev = snap.ranges[0]![0]?.modRevision ?? 0;
        const holders = snap.ranges[1]!;
        const mine = holders.find((h) => h.key === holderKey(group, id));
        if (mine) {
          // Renewing the lease keeps the key (and its mod_revision): no other grant is disturbed.
          if ((await this.etcd.leaseKeepAlive(mine.lease)) > 0) return { granted: true, refreshed: true, holders: holders.length };
          // Its lease just ran out: the key goes with it; decide again without it.
          await this.etcd.txn([{ key: mine.key, target: 'MOD', result: 'EQUAL', operand: mine.modRevision }], [{ del: { key: mine.key } }]);
          continue;
        }
        if (holders.length >= slots) return { granted: false, holders: holders.length };
        lease ??= await this.etcd.leaseGrant(ttlSeconds);
        const record: HolderRecord = { id, group, since: Date.now() };
        const r = await this.etcd.txn(
          [
            { key: guardKey(group), target: 'MOD', result: 'EQUAL', operand: guardRev },
            { key: holderKey(group, id), target: 'VERSION', result: 'EQUAL', operand: 0 },
          ],
          [
            { put: { key: guardKey(group), value: JSON.stringify({ slots }) } },
            { put: { key: holderKey(group, id), value: JSON.stringify(record), lease } },
          ],
        );
        if (r.succeeded) {
          lease = undefined; // now owned by the holder key
          return { granted: true, refreshed: false, holders: holders.length + 1 };
        }
        // Another grant (or this node's own concurrent request) won the race: look again.
        await sleep(2 + Math.random() * 8 * Math.min(attempt + 1, 8));
      }
      throw new AtomhostError('AH_ERR_BUSY', `fleet lock group ${group}: gave up after ${MAX_ATTEMPTS} contended attempts`);
    } finally {
      if (lease !== undefined) await this.etcd.leaseRevoke(lease).catch(() => {});
    }
  }

  /** UnlockIfHeld: true when this id held a slot (now freed), false when it held none. */
  async release(group: string, id: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { kvs } = await this.etcd.range(holderKey(group, id));
      const mine = kvs[0];
      if (!mine) return false;
      const r = await this.etcd.txn([{ key: mine.key, target: 'MOD', result: 'EQUAL', operand: mine.modRevision }], [{ del: { key: mine.key } }]);
      if (r.succeeded) {
        await this.etcd.leaseRevoke(mine.lease).catch(() => {});
        return true;
      }
    }
    throw new AtomhostError('AH_ERR_BUSY', `fleet lock group ${group}: release of ${id} kept racing`);
  }

  /** Every group that has a guard or a holder, with its holders (lease left is looked up when asked). */
  async snapshot(withLease = false): Promise<GroupState[]> {
    const { kvs } = await this.etcd.range(KEY_ROOT, prefixEnd(KEY_ROOT));
    const groups = new Map<string, GroupState>();
    const get = (g: string) => {
      let s = groups.get(g);
      if (!s) groups.set(g, (s = { group: g, slots: undefined, holders: [] }));
      return s;
    };
    for (const kv of kvs) {
      const rest = kv.key.slice(KEY_ROOT.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) continue;
      const group = rest.slice(0, slash);
      const tail = rest.slice(slash + 1);
      if (tail === 'sem') {
        const slots = safeJson(kv.value)?.slots;
        get(group).slots = typeof slots === 'number' ? slots : undefined;
      } else if (tail.startsWith('holders/')) {
        get(group).holders.push(await holderState(this.etcd, kv, tail.slice('holders/'.length), withLease));
      }
    }
    return [...groups.values()].sort((a, b) => a.group.localeCompare(b.group));
  }
}

export interface HolderState {
  id: string;
  since: number | undefined;
  lease: string;
  /** seconds left on the lease; undefined when not looked up */
  leaseLeft: number | undefined;
}

export interface GroupState {
  group: string;
  /** the slots the last granting server had configured */
  slots: number | undefined;
  holders: HolderState[];
}

async function holderState(etcd: EtcdClient, kv: KeyValue, id: string, withLease: boolean): Promise<HolderState> {
  const since = safeJson(kv.value)?.since;
  return {
    id,
    since: typeof since === 'number' ? since : undefined,
    lease: kv.lease,
    leaseLeft: withLease ? await etcd.leaseTimeToLive(kv.lease) : undefined,
  };
}

function safeJson(s: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(s) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
