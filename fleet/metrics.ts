// Prometheus text exposition for the lock server: request outcomes counted in this process,
// slots and holders per group read from etcd at scrape time (so every server of a fleet
// reports the same, real numbers).
export type Outcome = 'granted' | 'refreshed' | 'full' | 'released' | 'not_held' | 'refused' | 'unauthorized' | 'etcd_error';

export class Metrics {
  private readonly requests = new Map<string, number>();

  count(endpoint: 'pre-reboot' | 'steady-state' | 'other', outcome: Outcome): void {
    const k = `${endpoint}\0${outcome}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  render(groups: { group: string; slots: number; holders: number }[], etcdUp: boolean): string {
    const out: string[] = [
      '# HELP atomhost_fleetlock_requests_total FleetLock requests answered by this server, by endpoint and result.',
      '# TYPE atomhost_fleetlock_requests_total counter',
    ];
    for (const [k, v] of [...this.requests].sort()) {
      const [endpoint, result] = k.split('\0');
      out.push(`atomhost_fleetlock_requests_total{endpoint="${endpoint}",result="${result}"} ${v}`);
    }
    out.push('# HELP atomhost_fleetlock_slots Reboot slots of a group.', '# TYPE atomhost_fleetlock_slots gauge');
    for (const g of groups) out.push(`atomhost_fleetlock_slots{group="${g.group}"} ${g.slots}`);
    out.push('# HELP atomhost_fleetlock_holders Nodes holding a reboot slot of a group (from etcd).', '# TYPE atomhost_fleetlock_holders gauge');
    for (const g of groups) out.push(`atomhost_fleetlock_holders{group="${g.group}"} ${g.holders}`);
    out.push('# HELP atomhost_fleetlock_etcd_up 1 when etcd answered this scrape.', '# TYPE atomhost_fleetlock_etcd_up gauge');
    out.push(`atomhost_fleetlock_etcd_up ${etcdUp ? 1 : 0}`);
    return `${out.join('\n')}\n`;
  }
}
