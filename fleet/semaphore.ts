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
import { LeasePool, type TakenLease } from './lease-pool.js';

export const KEY_ROOT = '/atomhost/fleetlock/v1/';
const guardKey = (group: string) => `${KEY_ROOT}${group}/sem`;
const holdersPrefix = (group: string) => `${KEY_ROOT}${group}/holders/`;
const holderKey = (group: string, id: string) => `${holdersPrefix(group)}${id}`;

/** Grant attempts lost to other writers before giving up (each is a fresh, correct decision). */
const MAX_ATTEMPTS = 64;
/** Groups whose last view this process keeps (the oldest is dropped first). */
const MAX_VIEWS = 10_000;

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

/** A group as this process last saw it: the guard's mod_revision and the holder keys. */
interface View {
  guardRev: number;
  holders: Map<string, KeyValue>;
}

const viewOf = (guard: KeyValue[], holders: KeyValue[]): View => ({ guardRev: guard[0]?.modRevision ?? 0, holders: new Map(holders.map((h) => [h.key, h])) });

export class Semaphore {
  /** Requests of each group waiting for the group's next decision in this process. */
  private readonly pending = new Map<string, Pending[]>();
  /** Each group's state after this process's last transaction on it (see decide). */
  private readonly views = new Map<string, View>();
  private readonly leases: LeasePool;

  constructor(private readonly etcd: EtcdClient) {
    this.leases = new LeasePool(etcd);
  }

  /** Revokes the leases granted ahead (a server that stops). */
  async close(): Promise<void> {
    await this.leases.close();
  }

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
        this.views.delete(group);
        for (const p of batch) p.reject(err);
      }
    }
  }

  private async read(group: string): Promise<View> {
    const snap = await this.etcd.txn([], [{ range: { key: guardKey(group) } }, { range: { key: holdersPrefix(group), rangeEnd: prefixEnd(holdersPrefix(group)) } }]);
    return viewOf(snap.ranges[0]!, snap.ranges[1]!);
  }

  /**
   * Decides a batch of requests of one group (resolving each); throws when etcd fails.
   * Grants may start from the view this process kept: the compare-and-swap on the guard is what
   * makes them safe, and a stale view only makes it fail, its failure branch returning the
   * current state to decide again on. So a grant costs one round trip, not a read and a write.
   * Refusals and renewals are decided only on a view read (or written) after the batch came in.
   */
  private async decide(group: string, batch: Pending[]): Promise<void> {
    let view = this.views.get(group);
    let fresh = false;
    let open = batch;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && open.length > 0; attempt++) {
      if (!view) {
        view = await this.read(group);
        fresh = true;
      }
      const again: Pending[] = [];
      const winners: Pending[] = [];
      const renew: { p: Pending; kv: KeyValue }[] = [];
      const full: Pending[] = [];
      let count = view.holders.size;
      const seen = new Set<string>();
      for (const p of open) {
        const mine = view.holders.get(holderKey(group, p.id));
        if (mine) renew.push({ p, kv: mine });
        else if (seen.has(p.id)) again.push(p); // the same node twice in one batch: decided after the first
        else if (count < p.slots) {
          seen.add(p.id);
          winners.push(p);
          count++;
        } else full.push(p);
      }
      if (winners.length > 0) {
        const won = await this.grant(group, view, winners);
        // Lost on a view of this batch's own: another server's grant won; let it breathe.
        if (!won.ok && fresh) await sleep(2 + Math.random() * 8 * Math.min(attempt + 1, 8));
        view = won.view;
        fresh = true;
        if (won.ok) for (const w of winners) w.resolve({ granted: true, refreshed: false, holders: count });
        open = [...(won.ok ? [] : winners), ...renew.map((r) => r.p), ...again, ...full];
        continue;
      }
      if (!fresh) {
        view = undefined;
        continue;
      }
      for (const p of full) p.resolve({ granted: false, holders: count });
      const v = view;
      await Promise.all(
        renew.map(async ({ p, kv }) => {
          // Renewing the lease keeps the key (and its mod_revision): no other grant is disturbed.
          if ((await this.etcd.leaseKeepAlive(kv.lease)) > 0) return p.resolve({ granted: true, refreshed: true, holders: count });
          // Its lease just ran out: the key goes with it; decide again without it.
          await this.etcd.txn([{ key: kv.key, target: 'MOD', result: 'EQUAL', operand: kv.modRevision }], [{ del: { key: kv.key } }]);
          v.holders.delete(kv.key);
          again.push(p);
        }),
      );
      open = again;
    }
    if (view) {
      // Groups are named by the clients: keep the views of a bounded number (any view is optional).
      if (!this.views.has(group) && this.views.size >= MAX_VIEWS) this.views.delete(this.views.keys().next().value!);
      this.views.set(group, view);
    }
    if (open.length > 0) throw new AtomhostError('AH_ERR_BUSY', `fleet lock group ${group}: gave up after ${MAX_ATTEMPTS} contended attempts`);
  }

  /**
   * One compare-and-swap: if the guard is still at `view`'s revision and no winner has a key,
   * move the guard and put the winners' keys, each on a lease of its own. Either branch reads
   * the group back, so the caller has the current state whatever happened.
   */
  private async grant(group: string, view: View, winners: Pending[]): Promise<{ ok: boolean; view: View }> {
    const ttl = winners[0]!.ttl;
    let leases = await this.leases.take(ttl, winners.length);
    const readBack = { range: { key: holdersPrefix(group), rangeEnd: prefixEnd(holdersPrefix(group)) } };
    const swap = (ls: TakenLease[]) =>
      Promise.all([
        this.etcd.txn(
          [
            { key: guardKey(group), target: 'MOD', result: 'EQUAL', operand: view.guardRev },
            ...winners.map((w) => ({ key: holderKey(group, w.id), target: 'VERSION' as const, result: 'EQUAL' as const, operand: 0 })),
          ],
          [
            { put: { key: guardKey(group), value: JSON.stringify({ slots: winners[0]!.slots }) } },
            ...winners.map((w, i) => {
              const record: HolderRecord = { id: w.id, group, since: Date.now() };
              return { put: { key: holderKey(group, w.id), value: JSON.stringify(record), lease: ls[i]!.id } };
            }),
            readBack,
          ],
          [{ range: { key: guardKey(group) } }, readBack],
        ),
        // A reused lease gets its full TTL back now, as if granted for this grant.
        Promise.all(ls.map((l) => (l.reused ? this.etcd.leaseKeepAlive(l.id) : Promise.resolve(ttl)))),
      ]);
    let r;
    let renewed: number[];
    try {
      try {
        [r, renewed] = await swap(leases);
      } catch (err) {
        // A reused lease ran out before it was renewed: etcd refuses the whole swap. Again with new ones.
        if (!(err instanceof Error && /lease not found/i.test(err.message))) throw err;
        this.leases.discard(leases.map((l) => l.id));
        leases = await this.leases.fresh(ttl, winners.length);
        [r, renewed] = await swap(leases);
      }
    } catch (err) {
      this.leases.discard(leases.map((l) => l.id));
      throw err;
    }
    if (!r.succeeded) {
      for (const l of leases) this.leases.recycle(l.id);
      return { ok: false, view: viewOf(r.ranges[0]!, r.ranges[1]!) };
    }
    if (renewed.some((left) => left <= 0)) {
      // A reused lease expired right after the swap (a stalled process): take the keys this swap
      // wrote (still at its revision) back out rather than hand out a slot whose lease is gone.
      await Promise.all(winners.map((w) => this.etcd.txn([{ key: holderKey(group, w.id), target: 'MOD', result: 'EQUAL', operand: r.revision }], [{ del: { key: holderKey(group, w.id) } }])));
      this.leases.discard(leases.map((l) => l.id));
      return { ok: false, view: await this.read(group) };
    }
    return { ok: true, view: viewOf([{ modRevision: r.revision } as KeyValue], r.ranges[r.ranges.length - 1]!) };
  }

  /**
   * UnlockIfHeld: true when this id held a slot (now freed), false when it held none.
   * One delete that returns what it deleted. Its lease goes back to the pool for the next grant
   * (or is revoked after the answer when another server granted it: the key, which is what holds
   * the slot, is already gone, and a lease left over expires by itself).
   */
  async release(group: string, id: string): Promise<boolean> {
    const key = holderKey(group, id);
    const r = await this.etcd.txn([], [{ del: { key, prevKv: true } }]);
    const prev = r.ranges[0]![0];
    if (!prev) return false;
    this.views.get(group)?.holders.delete(key);
    if (prev.lease !== '0') this.leases.recycle(prev.lease);
    return true;
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
