// Named fault-injection points for the crash-consistency test: with
// ATOMHOST_FAULT=<point> the process kills itself (SIGKILL, no clean-up) on reaching
// that point. Costs one environment lookup per point otherwise.

export const FAULT_POINTS = [
  'tx:begun',
  'upgrade:pulled',
  'deploy:record-written',
  'deploy:deployed',
  'rollback:begun',
  'rollback:written',
  'commit:mutated',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number] | `${string}:${string}`;

export function faultPoint(name: FaultPoint): void {
  if (process.env.ATOMHOST_FAULT === name) process.kill(process.pid, 'SIGKILL');
}
