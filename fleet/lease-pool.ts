// etcd leases granted ahead of the grants that attach them, so granting a slot waits for one
// etcd round trip (the compare-and-swap) instead of two (lease grant, then the swap).
// A pooled lease has exactly the lock's TTL and is renewed (keepalive) alongside the swap
// that attaches it, so a node told "granted" holds a lease with the full TTL, as if granted
// then. It is handed out only while at most half its TTL has run (at most 30 s), so the
// renewal always finds it alive; older ones are revoked. The pool only replaces what was
// taken, so an idle server grants nothing and the leases it holds age out.
import type { EtcdClient } from './etcd.js';

const MAX_AGE_MS = 30_000;
const MAX_POOLED = 64;

interface Pooled {
  id: string;
  at: number;
}

export interface TakenLease {
  id: string;
  /** true when it came from the pool: renew it together with the write that attaches it */
  pooled: boolean;
}

export class LeasePool {
  private readonly free = new Map<number, Pooled[]>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly etcd: EtcdClient) {}

  /** `n` leases of `ttl` seconds: pooled ones first, the rest granted now. */
  async take(ttl: number, n: number): Promise<TakenLease[]> {
    const list = this.usable(ttl);
    const got: TakenLease[] = list.splice(0, n).map((l) => ({ id: l.id, pooled: true }));
    const fresh = await Promise.all(Array.from({ length: n - got.length }, () => this.etcd.leaseGrant(ttl)));
    this.refill(ttl, n);
    return [...got, ...fresh.map((id) => ({ id, pooled: false }))];
  }

  /** Leases taken but not attached (the swap lost): revoked, so nothing outlives its use. */
  discard(ids: string[]): void {
    for (const id of ids) void this.etcd.leaseRevoke(id).catch(() => {});
  }

  /** Revokes every pooled lease and stops refilling. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.free.values()].flat();
    this.free.clear();
    await Promise.all(all.map((l) => this.etcd.leaseRevoke(l.id).catch(() => {})));
  }

  private maxAge(ttl: number): number {
    return Math.min(MAX_AGE_MS, (ttl * 1000) / 2);
  }

  /** The pooled leases of `ttl` still young enough; the others are revoked. */
  private usable(ttl: number): Pooled[] {
    const list = this.free.get(ttl) ?? [];
    const cutoff = Date.now() - this.maxAge(ttl);
    const old = list.filter((l) => l.at < cutoff);
    if (old.length > 0) this.discard(old.map((l) => l.id));
    const young = list.filter((l) => l.at >= cutoff);
    this.free.set(ttl, young);
    return young;
  }

  private refill(ttl: number, n: number): void {
    if (this.closed) return;
    const want = Math.min(n, MAX_POOLED - (this.free.get(ttl)?.length ?? 0));
    for (let i = 0; i < want; i++) {
      const at = Date.now();
      this.etcd.leaseGrant(ttl).then(
        (id) => {
          if (this.closed) return this.discard([id]);
          const list = this.free.get(ttl);
          if (list) list.push({ id, at });
          else this.free.set(ttl, [{ id, at }]);
        },
        () => {}, // etcd unavailable: the next take grants (and reports) for itself
      );
    }
    // Revoke what nobody took once it is too old (unref'd: it never keeps the process up).
    this.sweeper ??= setInterval(() => {
      for (const t of this.free.keys()) this.usable(t);
    }, 5000).unref();
  }
}
