// `atomhost fleetlock status`: the holders per group as a table or JSON.
import type { GroupState } from './semaphore.js';

export function fleetStatusJson(groups: GroupState[], now: number) {
  return {
    groups: groups.map((g) => ({
      group: g.group,
      slots: g.slots ?? null,
      holders: g.holders.map((h) => ({
        id: h.id,
        since: h.since !== undefined ? new Date(h.since).toISOString() : null,
        ageSeconds: h.since !== undefined ? Math.max(0, Math.round((now - h.since) / 1000)) : null,
        leaseLeftSeconds: h.leaseLeft !== undefined && h.leaseLeft >= 0 ? h.leaseLeft : null,
      })),
    })),
  };
}

export function renderFleetStatus(groups: GroupState[], now: number): string {
  if (groups.length === 0) return 'no group has ever held a lock\n';
  const lines: string[] = [];
  for (const g of fleetStatusJson(groups, now).groups) {
    lines.push(`group ${g.group}: ${g.holders.length}/${g.slots ?? '?'} slots held`);
    for (const h of g.holders) lines.push(`  ${h.id}  held ${dur(h.ageSeconds)}  lease left ${dur(h.leaseLeftSeconds)}`);
  }
  return `${lines.join('\n')}\n`;
}

function dur(s: number | null): string {
  if (s === null) return '?';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
