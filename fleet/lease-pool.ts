// etcd leases kept ready for the grants that attach them, so granting a slot waits for one
// etcd round trip (the compare-and-swap) instead of two (lease grant, then the swap), and a
// release does not revoke: the lease of a released slot goes back here and is attached to
// the next grant (a lease is only a TTL; a key holds the slot). That saves two of the four
// raft writes a lock and release cost.
// A reused lease has exactly the lock's TTL (only leases this process granted with that TTL
// are reused) and is renewed (keepalive) alongside the swap that attaches it, so a node told
// "granted" holds a lease with the full TTL, as if granted then. One that ran out meanwhile
// makes the swap fail with "lease not found"; the caller then asks for new ones (fresh()).
// Unused leases are revoked after at most half their TTL (30 s at most); an idle server
// grants nothing.
import type { EtcdClient } from './etcd.js';

const MAX_AGE_MS = 30_000;
const MAX_POOLED = 64;
/** Leases remembered as granted here (for reuse on release); the oldest are forgotten first. */
const MAX_KNOWN = 20_000;

interface Pooled {
  id: string;
  at: number;
}

export interface TakenLease {
  id: string;
  /** true when it was granted earlier: renew it together with the write that attaches it */
  reused: boolean;
}

export class LeasePool {
  private readonly free = new Map<number, Pooled[]>();
  /** lease id → TTL, for the leases this process granted */
  private readonly known = new Map<string, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly etcd: EtcdClient) {}

  /** `n` leases of `ttl` seconds: pooled ones first, the rest granted now. */
  async take(ttl: number, n: number): Promise<TakenLease[]> {
    const list = this.usable(ttl);
    // The newest first: the oldest are left to age out rather than risk running out in use.
    const got: TakenLease[] = list.splice(Math.max(0, list.length - n)).map((l) => ({ id: l.id, reused: true }));
    const fresh = await this.fresh(ttl, n - got.length);
    if (fresh.length > 0) this.refill(ttl, fresh.length);
    return [...got, ...fresh];
  }

  /** `n` leases granted now (after a reused one turned out to be gone). */
  async fresh(ttl: number, n: number): Promise<TakenLease[]> {
    const ids = await Promise.all(Array.from({ length: n }, () => this.grant(ttl)));
    return ids.map((id) => ({ id, reused: false }));
  }

  /** The lease of a released slot: kept for the next grant when it is ours, else revoked. */
  recycle(id: string): void {
    const ttl = this.known.get(id);
    if (ttl === undefined || this.closed || (this.free.get(ttl)?.length ?? 0) >= MAX_POOLED) return this.discard([id]);
    this.put(ttl, { id, at: Date.now() });
  }

  /** Leases taken but not attached, or gone: revoked, so nothing outlives its use. */
  discard(ids: string[]): void {
    for (const id of ids) {
      this.known.delete(id);
      void this.etcd.leaseRevoke(id).catch(() => {});
    }
  }

  /** Revokes every pooled lease and stops refilling. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.free.values()].flat();
    this.free.clear();
    await Promise.all(all.map((l) => this.etcd.leaseRevoke(l.id).catch(() => {})));
  }

  private async grant(ttl: number): Promise<string> {
    const id = await this.etcd.leaseGrant(ttl);
    this.known.set(id, ttl);
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
    return id;
  }

  private put(ttl: number, l: Pooled): void {
    const list = this.free.get(ttl);
    if (list) list.push(l);
    else this.free.set(ttl, [l]);
    // Revoke what nobody took once it is too old (unref'd: it never keeps the process up).
    this.sweeper ??= setInterval(() => {
      for (const t of this.free.keys()) this.usable(t);
    }, 5000).unref();
  }

  /** The pooled leases of `ttl` still young enough; the others are revoked. */
  private usable(ttl: number): Pooled[] {
    const list = this.free.get(ttl) ?? [];
    const cutoff = Date.now() - Math.min(MAX_AGE_MS, (ttl * 1000) / 2);
    const old = list.filter((l) => l.at < cutoff);
    if (old.length > 0) this.discard(old.map((l) => l.id));
    const young = list.filter((l) => l.at >= cutoff);
    this.free.set(ttl, young);
    return young;
  }

  /** Replaces, in the background, the leases a grant had to wait for. */
  private refill(ttl: number, n: number): void {
    const want = Math.min(n, MAX_POOLED - (this.free.get(ttl)?.length ?? 0));
    for (let i = 0; i < want && !this.closed; i++) {
      const at = Date.now();
      this.grant(ttl).then(
        (id) => (this.closed ? this.discard([id]) : this.put(ttl, { id, at })),
        () => {}, // etcd unavailable: the next take grants (and reports) for itself
      );
    }
  }
}
