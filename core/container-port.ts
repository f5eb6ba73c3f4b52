// What the host core needs from the system-container machinery to upgrade a whole
// stack as one revision: pull and verify an image, prepare a container's checkout and
// unit without starting it, and apply a revision's containers live. containers/ fills
// it in; core never imports containers/ (the dependency points one way).
import type { ProgressSink } from './progress.js';
import type { ContainerSpec, Revision, UnitSpec } from './revision.js';
import type { UnitManager } from './unit-manager.js';

export interface PreparedContainer {
  container: ContainerSpec;
  /** The unit that runs it: name (e.g. etcd.service) → content-addressed record. */
  units: Record<string, UnitSpec>;
}

export interface ContainerPort {
  /** Pulls an image into the store, verifying every digest; returns its manifest digest. */
  pull(image: string, opts: { digest?: string; signal?: AbortSignal; progress?: ProgressSink }): Promise<{ digest: string }>;
  /** Checks the image out and renders its runtime config and unit (nothing is started). */
  prepare(spec: { name: string; image: string; digest: string; values: Record<string, string>; role?: string }): Promise<PreparedContainer>;
  /** Makes the running stack match `to` (units written, reloaded, started/restarted/stopped in role order). */
  /** atBoot: only queue the start jobs (the stack's units are ordered after the reconcile unit). */
  apply(to: Revision, from: Revision | null, units: UnitManager, opts?: { atBoot?: boolean }): Promise<void>;
}
