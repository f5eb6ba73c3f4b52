// What `atomhost status --booted` and `--pending-exit-77` look at, as rpm-ostree does.
import type { HostStatus } from '../core/host-api.js';

/** The same Host object with only the booted deployment (none on a sysroot that is not booted). */
export function bootedOnly(s: HostStatus): HostStatus {
  return { ...s, status: { ...s.status, deployments: s.status.deployments.filter((d) => d.booted) } };
}

/**
 * Whether the next boot starts another deployment than the running one: rpm-ostree's rule,
 * more than one deployment and the first (the default, or the staged one) not booted. On a
 * --sysroot that is not the running system nothing is booted, so any second deployment
 * means the default is pending.
 */
export function hasPendingDeployment(s: HostStatus): boolean {
  const [first] = s.status.deployments;
  return s.status.deployments.length > 1 && !first.booted;
}

/** rpm-ostree's code for a pending deployment (the same 77 as "no update" of `upgrade --check`). */
export const PENDING_EXIT = 77;
