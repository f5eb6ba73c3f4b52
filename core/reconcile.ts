// Keeping the running stack equal to a revision: at boot (before the stack's units
// start), and when the health gate (core/health-gate.ts) puts a healthy revision back
// live.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic-write.js';
import type { ContainerPort } from './container-port.js';
import { acceptBootLoaderFallback, applyFallback, countBoot, currentRevision, type GateOutcome } from './health-gate.js';
import type { LocalHost } from './local-host.js';
import { shortId, type Revision } from './revision.js';
import type { UnitManager } from './unit-manager.js';

/** What a boot-time reconcile or a gate did: the revision running, the decision, whether to reboot. */
export type ReconcileOutcome = GateOutcome;

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

/** Makes the containers and units match `to`, and records it as applied. */
export async function applyRevision(host: LocalHost, port: ContainerPort, units: UnitManager, to: Revision, opts: { atBoot?: boolean } = {}): Promise<void> {
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
  const lost = await host.dropUnfinalized();
  const unfinalized = lost.length
    ? `the staged revision ${lost.map(shortId).join(', ')} was never finalized (the host went down during shutdown, or ostree-finalize-staged failed): dropped; run atomhost upgrade to stage it again; `
    : '';
  const fellBack = await acceptBootLoaderFallback(host);
  const decision = await countBoot(host, maxBootAttempts);
  if (decision?.action === 'fall-back') {
    const message = await applyFallback(host, decision);
    return { revision: decision.to, decision, reboot: true, message };
  }
  const cur = await currentRevision(host);
  if (!cur) return { revision: null, decision, reboot: false, message: 'no deployment with a revision: nothing to reconcile' };
  await applyRevision(host, port, units, cur.rev, { atBoot: true });
  return { revision: cur.rev.id, decision, reboot: false, message: `${unfinalized}${fellBack ? `${fellBack}; ` : ''}stack reconciled to revision ${shortId(cur.rev.id)}` };
}
