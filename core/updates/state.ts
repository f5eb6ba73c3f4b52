// The update agent's states (docs/updates.md draws the machine) and what survives a
// reboot: <sysroot>/ostree/atomhost/updates.json, beside the revision records, written
// atomically. It says "paused", which revision was staged, and which one the agent
// rebooted into (so the boot after it knows to wait for the gate and release the lock).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from '../atomic-write.js';
import type { Strategy } from './config.js';

export const UPDATE_STATES = ['initialized', 'steady', 'checking', 'available', 'staged', 'waiting', 'rebooting', 'gating', 'paused', 'disabled', 'error'] as const;
export type UpdateStateName = (typeof UPDATE_STATES)[number];

export interface UpdateTarget {
  version: string | null;
  checksum: string | null;
  revision: string | null;
}

/** What `atomhost updates status`, `atomhost status --json` (status.updates) and GetUpdates show. */
export interface UpdatesReport {
  state: UpdateStateName;
  /** Why this state: the window or lock waited for, the hook that failed, the error. */
  reason: string | null;
  since: string;
  strategy: Strategy | null;
  source: 'graph' | 'refspec' | null;
  target: UpdateTarget | null;
  paused: boolean;
  lastCheck: string | null;
  nextCheck: string | null;
  nextWindow: string | null;
  /** The booted release is a dead end in the graph (its reason). */
  deadEnd: string | null;
  /** The last update that failed its health gate after the reboot (the host fell back). */
  lastFailure: string | null;
}

export interface Persisted {
  paused: boolean;
  staged: (UpdateTarget & { revision: string }) | null;
  rebootingInto: (UpdateTarget & { revision: string; from: string | null }) | null;
  /** Payloads whose revision failed its gate: not chosen again (as Zincati denylists a rolled-back release). */
  denied: string[];
  lastFailure: string | null;
  /**
   * After the boot: the fleet lock slot still to give back (what the reboot ended in, for the
   * messages). Set once the post-healthy hooks ran, so a retry never runs them again.
   */
  releasePending: string | null;
}

const EMPTY: Persisted = { paused: false, staged: null, rebootingInto: null, denied: [], lastFailure: null, releasePending: null };

export const stateFile = (sysroot: string): string => join(sysroot, 'ostree', 'atomhost', 'updates.json');

export async function loadPersisted(sysroot: string): Promise<Persisted> {
  try {
    const j = JSON.parse(await readFile(stateFile(sysroot), 'utf8')) as Partial<Persisted>;
    return { ...EMPTY, ...j, releasePending: typeof j.releasePending === 'string' ? j.releasePending : null, denied: Array.isArray(j.denied) ? j.denied.filter((x) => typeof x === 'string') : [] };
  } catch {
    return { ...EMPTY }; // none yet (or unreadable: start over, nothing is rebooted on it)
  }
}

export async function savePersisted(sysroot: string, p: Persisted): Promise<void> {
  await atomicWriteFile(stateFile(sysroot), `${JSON.stringify(p, null, 2)}\n`);
}
