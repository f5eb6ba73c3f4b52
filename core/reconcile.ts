// Keeping the running stack equal to a revision: at boot (before the stack's units
// start) and after a live change, followed by the health gate that keeps the revision
// or falls back to the newest healthy one.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic-write.js';
import type { ContainerPort } from './container-port.js';
import { acceptBootLoaderFallback, applyFallback, countBoot, currentRevision, judge, type GateDecision } from './health-gate.js';
import { runHealthChecks, type HealthCheck, type HealthReport } from './health.js';
import type { LocalHost } from './local-host.js';
import { shortId, type Revision } from './revision.js';
import type { UnitManager } from './unit-manager.js';

export interface ReconcileOutcome {
  /** The revision the stack now runs. */
  revision: string | null;
  /** What the boot counter or the health gate decided. */
  decision: GateDecision | null;
  /** The host must reboot (an OS fallback cannot be applied live). */
  reboot: boolean;
  /** From the failed check to the previous revision running again (a live fallback), in ms. */
  fallbackMs?: number;
  message: string;
}

function appliedFile(host: LocalHost): string {
  return join(host.sysroot.path, 'ostree', 'atomhost', 'applied.json');
}

/** The revision whose containers and units were last applied on this host. */
export async function appliedRevision(host: LocalHost): Promise<Revision | null> {
  try {
    const { revision } = JSON.parse(await readFile(appliedFile(host), 'utf8')) as { revision: string };
    return await host.revisions.find(revision);
  } catch {
    return null;
  }
}

async function apply(host: LocalHost, port: ContainerPort, units: UnitManager, to: Revision, opts: { atBoot?: boolean } = {}): Promise<void> {
  const from = await appliedRevision(host);
  await port.apply(to, from, units, opts);
  await atomicWriteFile(appliedFile(host), JSON.stringify({ revision: to.id, applied: new Date().toISOString() }));
}

/**
 * At boot: finish any interrupted transaction, count this boot of the revision, then
 * make the containers and units match the booted deployment's revision. A revision past
 * its boot budget is failed and the host told to reboot into the healthy fallback.
 */
export async function reconcileAtBoot(host: LocalHost, port: ContainerPort, units: UnitManager, maxBootAttempts?: number): Promise<ReconcileOutcome> {
  await host.recover();
  const fellBack = await acceptBootLoaderFallback(host);
  const decision = await countBoot(host, maxBootAttempts);
  if (decision?.action === 'fall-back') {
    const message = await applyFallback(host, decision);
    return { revision: decision.to, decision, reboot: true, message };
  }
  const cur = await currentRevision(host);
  if (!cur) return { revision: null, decision, reboot: false, message: 'no deployment with a revision: nothing to reconcile' };
  await apply(host, port, units, cur.rev, { atBoot: true });
  return { revision: cur.rev.id, decision, reboot: false, message: `${fellBack ? `${fellBack}; ` : ''}stack reconciled to revision ${shortId(cur.rev.id)}` };
}

/**
 * After a change: run the health checks, then keep the revision or fall back. A
 * container-only fallback is applied live (same OS commit); an OS fallback reorders
 * the boot entries and asks for a reboot.
 */
export async function gate(
  host: LocalHost,
  port: ContainerPort | null,
  units: UnitManager | null,
  checks: HealthCheck[],
  opts: { deadlineMs: number; signal?: AbortSignal },
): Promise<ReconcileOutcome & { report: HealthReport }> {
  const before = await currentRevision(host);
  const report = await runHealthChecks(checks, units, opts);
  const failedAt = performance.now();
  const decision = await judge(host, report);
  if (decision?.action !== 'fall-back') {
    return { revision: before?.rev.id ?? null, decision, reboot: false, report, message: decision?.action === 'healthy' ? `revision ${shortId(decision.revision)} is healthy` : (decision as { reason?: string })?.reason ?? 'no revision' };
  }
  const message = await applyFallback(host, decision);
  const target = await host.revisions.get(decision.to);
  const live = before !== null && target.os.checksum === before.rev.os.checksum && target.os.kargs.join(' ') === before.rev.os.kargs.join(' ');
  if (live && port && units) {
    await apply(host, port, units, target);
    return { revision: target.id, decision, reboot: false, report, message: `${message}; applied live`, fallbackMs: Math.round(performance.now() - failedAt) };
  }
  return { revision: target.id, decision, reboot: true, report, message: `${message}; reboot to finish` };
}
