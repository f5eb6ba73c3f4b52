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

interface Pending {
  id: string;
  slots: number;
  ttl: number;
  resolve: (r: AcquireResult) => void;
  reject: (e: unknown) => void;
}

export class Semaphore {
  /** Requests of each group waiting for the group's next decision in this process. */
  private readonly pending = new Map<string, Pending[]>();

  constructor(private readonly etcd: EtcdClient) {}

  /**
   * RecursiveLock: the holder asking again is granted (and its lease renewed); anyone else gets
   * a slot only while fewer than `slots` are held.
   * The requests of one group that arrive while a decision is being made are decided together
   * in the next one (one snapshot, one transaction): concurrent decisions would only make each
   * other's compare-and-swap fail, so a fleet asking at once would queue behind retries.
   */
  acquire(group: string, id: string, slots: number, ttlSeconds: number): Promise<AcquireResult> {
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(group);
      if (queue) {
        queue.push({ id, slots, ttl: ttlSeconds, resolve, reject });
        return;
      }
      this.pending.set(group, [{ id, slots, ttl: ttlSeconds, resolve, reject }]);
      void this.drain(group);
    });
  }

  private async drain(group: string): Promise<void> {
    for (;;) {
      const batch = this.pending.get(group)!;
      if (batch.length === 0) {
        this.pending.delete(group);
        return;
      }
      this.pending.set(group, []);
      try {
        await this.decide(group, batch);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  /** Decides a batch of requests of one group (resolving each); throws when etcd fails. */
  private async decide(group: string, batch: Pending[]): Promise<void> {
    const leases = new Map<string, string>(); // granted for a request, not yet attached to a key
    try {
      let open = batch;
      for (let attempt = 0; attempt < MAX_ATTEMPTS && open.length > 0; attempt++) {
        const snap = await this.etcd.txn([], [{ range: { key: guardKey(group) } }, { range: { key: holdersPrefix(group), rangeEnd: prefixEnd(holdersPrefix(group)) } }]);
        const guardRev = snap.ranges[0]![0]?.modRevision ?? 0;
        const holders = snap.ranges[1]!;
        const held = new Map(holders.map((h) => [h.key, h]));
        const next: Pending[] = [];
        const winners: Pending[] = [];
        let count = holders.length;
        const seen = new Set<string>();
        for (const p of open) {
          const mine = held.get(holderKey(group, p.id));
          if (mine) {
            // Renewing the lease keeps the key (and its mod_revision): no other grant is disturbed.
            if ((await this.etcd.leaseKeepAlive(mine.lease)) > 0) p.resolve({ granted: true, refreshed: true, holders: count });
            else {
              // Its lease just ran out: the key goes with it; decide again without it.
              await this.etcd.txn([{ key: mine.key, target: 'MOD', result: 'EQUAL', operand: mine.modRevision }], [{ del: { key: mine.key } }]);
              next.push(p);
            }
          } else if (seen.has(p.id)) {
            next.push(p); // the same node twice in one batch: decided after the first
          } else if (count < p.slots) {
            seen.add(p.id);
            winners.push(p);
            count++;
          } else p.resolve({ granted: false, holders: count });
        }
        if (winners.length > 0) {
          await Promise.all(winners.filter((w) => !leases.has(w.id)).map(async (w) => leases.set(w.id, await this.etcd.leaseGrant(w.ttl))));
          const r = await this.etcd.txn(
            [
              { key: guardKey(group), target: 'MOD', result: 'EQUAL', operand: guardRev },
              ...winners.map((w) => ({ key: holderKey(group, w.id), target: 'VERSION' as const, result: 'EQUAL' as const, operand: 0 })),
            ],
            [
              { put: { key: guardKey(group), value: JSON.stringify({ slots: winners[0]!.slots }) } },
              ...winners.map((w) => {
                const record: HolderRecord = { id: w.id, group, since: Date.now() };
                return { put: { key: holderKey(group, w.id), value: JSON.stringify(record), lease: leases.get(w.id)! } };
              }),
            ],
          );
          if (r.succeeded) {
            for (const w of winners) {
              leases.delete(w.id); // now owned by the holder key
              w.resolve({ granted: true, refreshed: false, holders: count });
            }
          } else {
            // Another server's grant won the race: decide these again on a fresh snapshot.
            next.push(...winners);
            await sleep(2 + Math.random() * 8 * Math.min(attempt + 1, 8));
          }
        }
        open = next;
      }
      if (open.length > 0) throw new AtomhostError('AH_ERR_BUSY', `fleet lock group ${group}: gave up after ${MAX_ATTEMPTS} contended attempts`);
    } finally {
      for (const l of leases.values()) await this.etcd.leaseRevoke(l).catch(() => {});
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
