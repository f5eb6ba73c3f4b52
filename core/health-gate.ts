// The health gate: after a change (live, or after booting a new revision) the checks
// decide. Pass: the revision is marked healthy and becomes the fallback from then on.
// Fail: it is marked failed with the reason, and the host falls back to the newest
// healthy revision. Bounded so that it never loops: only a healthy revision is ever a
// fallback target, and a revision that fails to come up healthy within its boot tries
// (GateSettings.bootTries) boots is given up on.
//
// This module owns the gate whole: its timing (core/gate-settings.ts, the one place that
// reads it from the environment), the polling of the checks (core/health.ts says what a check is), the
// verdict and the fallback. The daemon, the boot units and the supervisor call it.
import { readFile } from 'node:fs/promises';
import { readFileSync, realpathSync } from 'node:fs';
import type { Deployment } from '../ostree-bridge/types.js';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic-write.js';
import { bootLoaderFellBack, clearBootCounter } from './boot-counter.js';
import { gateSettings, type GatePhase, type GateSettings } from './gate-settings.js';
import { checkOnce, type CheckResult, type HealthCheck, type HealthReport } from './health.js';
import type { LocalHost } from './local-host.js';
import { revisionIdFromOrigin, shortId, type Revision } from './revision.js';
import type { UnitManager } from './unit-manager.js';

export { GATE_DEFAULTS, gateSettings, type GatePhase, type GateSettings } from './gate-settings.js';

/**
 * Polls every check until all pass at once, or the deadline passes. A unit must also
 * stay up for `settleMs` after it first passes: a restart loop shows up in that window.
 * Timing not given is the gate's settings.
 */
export async function runHealthChecks(
  checks: HealthCheck[],
  units: UnitManager | null,
  opts: { deadlineMs: number; intervalMs?: number; settleMs?: number; signal?: AbortSignal; settings?: GateSettings },
): Promise<HealthReport> {
  const settings = opts.settings ?? gateSettings();
  const interval = opts.intervalMs ?? settings.intervalMs;
  const settle = opts.settleMs ?? settings.settleMs;
  const deadline = Date.now() + opts.deadlineMs;
  const baseRestarts = new Map<string, number>();
  let firstAllOk: number | null = null;
  let results: CheckResult[] = [];
  for (;;) {
    opts.signal?.throwIfAborted();
    results = await Promise.all(checks.map((c) => checkOnce(c, units, baseRestarts, settings, opts.signal)));
    const allOk = results.every((r) => r.ok);
    const hasUnits = checks.some((c) => c.kind === 'unit');
    if (allOk) {
      firstAllOk ??= Date.now();
      if (!hasUnits || Date.now() - firstAllOk >= settle) break;
    } else firstAllOk = null;
    // A restart loop is final: no need to wait for the deadline.
    if (results.some((r) => !r.ok && r.output.includes('restart loop'))) break;
    if (Date.now() + interval > deadline) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  const failed = results.find((r) => !r.ok);
  return { ok: !failed, results, reason: failed ? `${failed.name}: ${failed.output}` : null };
}

/** One look at each check, no waiting: the state right now (a status report, not a verdict). */
export async function lookOnce(checks: HealthCheck[], units: UnitManager | null, signal?: AbortSignal): Promise<CheckResult[]> {
  const settings = gateSettings();
  return Promise.all(checks.map((c) => checkOnce(c, units, new Map(), settings, signal)));
}

export interface BootAttempts {
  revision: string;
  attempts: number;
}

export type GateDecision =
  | { action: 'healthy'; revision: string }
  | { action: 'fall-back'; from: string; to: string; toIndex: number; reason: string }
  | { action: 'give-up'; revision: string; reason: string }
  | { action: 'wait'; revision: string; attempts: number };

function attemptsFile(host: LocalHost): string {
  return join(host.sysroot.path, 'ostree', 'atomhost', 'boot-attempts.json');
}

export async function readAttempts(host: LocalHost): Promise<BootAttempts | null> {
  try {
    return JSON.parse(await readFile(attemptsFile(host), 'utf8')) as BootAttempts;
  } catch {
    return null;
  }
}

async function writeAttempts(host: LocalHost, a: BootAttempts | null): Promise<void> {
  await atomicWriteFile(attemptsFile(host), a ? JSON.stringify(a) : '{}');
}

/**
 * The deployment the boot loader started, for a sysroot libostree does not see as booted
 * (one at another path, as in a test host): the `ostree=` kernel argument resolved inside
 * that sysroot, as ostree-prepare-root resolves it.
 */
export function bootedByCmdline(sysroot: string, deps: Deployment[], cmdline = readCmdline()): Deployment | null {
  const arg = /(?:^|\s)ostree=(\S+)/.exec(cmdline)?.[1];
  if (!arg) return null;
  try {
    const target = realpathSync(join(sysroot, arg));
    return deps.find((d) => realpathSync(d.path) === target) ?? null;
  } catch {
    return null;
  }
}

function readCmdline(): string {
  try {
    return readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return '';
  }
}

/** The revision the running system is on: the booted deployment's, or the default one on a sysroot that is not booted. */
export async function currentRevision(host: LocalHost): Promise<{ rev: Revision; index: number } | null> {
  const deps = await host.sysroot.reload();
  const d = deps.find((x) => x.booted) ?? bootedByCmdline(host.sysroot.path, deps) ?? deps[0];
  if (!d) return null;
  const rev = await host.revisions.find(revisionIdFromOrigin(d.origin));
  return rev ? { rev, index: d.index } : null;
}

/** The deployment to fall back to: the first one (boot order) whose revision is healthy, other than `from`. */
export async function fallbackTarget(host: LocalHost, from: string): Promise<{ rev: Revision; index: number } | null> {
  for (const d of host.sysroot.deployments) {
    const id = revisionIdFromOrigin(d.origin);
    if (!id || id === from) continue;
    const rev = await host.revisions.find(id);
    if (rev?.state === 'healthy') return { rev, index: d.index };
  }
  return null;
}

/**
 * Counts a boot of the current revision before its stack starts. Past the bound, the
 * revision is marked failed and the decision says where to fall back (or to give up).
 */
export async function countBoot(host: LocalHost, maxAttempts = gateSettings().bootTries): Promise<GateDecision | null> {
  const cur = await currentRevision(host);
  if (!cur || cur.rev.state === 'healthy') return cur ? { action: 'healthy', revision: cur.rev.id } : null;
  const prev = await readAttempts(host);
  const attempts = (prev?.revision === cur.rev.id ? prev.attempts : 0) + 1;
  await writeAttempts(host, { revision: cur.rev.id, attempts });
  if (attempts <= maxAttempts) return { action: 'wait', revision: cur.rev.id, attempts };
  return decideFailure(host, cur.rev, `did not come up healthy in ${maxAttempts} boots`);
}

/** Applies a health report to the current revision and returns what must happen next. */
export async function judge(host: LocalHost, report: HealthReport): Promise<GateDecision | null> {
  const cur = await currentRevision(host);
  if (!cur) return null;
  if (report.ok) {
    await host.revisions.setState(cur.rev.id, 'healthy');
    await writeAttempts(host, null);
    await clearBootCounter(host.sysroot.path);
    return { action: 'healthy', revision: cur.rev.id };
  }
  return decideFailure(host, cur.rev, report.reason ?? 'health checks failed');
}

async function decideFailure(host: LocalHost, rev: Revision, reason: string): Promise<GateDecision> {
  await host.revisions.setState(rev.id, 'failed', reason);
  const target = await fallbackTarget(host, rev.id);
  if (!target) return { action: 'give-up', revision: rev.id, reason: `${reason}; no healthy revision to fall back to` };
  return { action: 'fall-back', from: rev.id, to: target.rev.id, toIndex: target.index, reason };
}

/** Makes the fallback deployment the default (one bootloader swap); the caller reboots or reconciles live. */
export async function applyFallback(host: LocalHost, d: Extract<GateDecision, { action: 'fall-back' }>): Promise<string> {
  await host.sysroot.withLock(async () => {
    const order = [d.toIndex, ...host.sysroot.deployments.map((x) => x.index).filter((i) => i !== d.toIndex)];
    await host.sysroot.writeDeployments(order);
  });
  return `revision ${shortId(d.from)} failed its health checks (${d.reason}); fell back to revision ${shortId(d.to)}`;
}

/**
 * The boot loader used up the default entry's tries and booted the previous one: that
 * default never reached userspace (or never passed the gate). Mark its revision failed,
 * make the running deployment the default again, and stop counting, so the host does
 * not loop and never picks that revision again. Null when nothing fell back.
 */
export async function acceptBootLoaderFallback(host: LocalHost): Promise<string | null> {
  if (!(await bootLoaderFellBack(host.sysroot.path))) return null;
  const deps = await host.sysroot.reload();
  const booted = deps.find((x) => x.booted) ?? bootedByCmdline(host.sysroot.path, deps);
  const failed = deps[0];
  let message = 'the boot loader fell back to the previous entry';
  if (booted && failed && booted.index !== failed.index) {
    const id = revisionIdFromOrigin(failed.origin);
    const reason = `never reached its health gate: the boot loader fell back after its boot tries ran out`;
    if (id) await host.revisions.setState(id, 'failed', reason);
    await host.sysroot.withLock(async () => {
      await host.sysroot.writeDeployments([booted.index, ...deps.map((x) => x.index).filter((i) => i !== booted.index)]);
    });
    message = `revision ${id ? shortId(id) : failed.checksum.slice(0, 12)} ${reason}; deployment ${booted.index} is the default again`;
  }
  await clearBootCounter(host.sysroot.path);
  return message;
}



export interface GateOutcome {
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

/**
 * The gate after a change: run the checks until they pass or the phase's deadline
 * passes, then keep the revision or fall back. A container-only fallback is applied live
 * by `applyLive` (same OS commit); an OS fallback, or one without `applyLive`, reorders
 * the boot entries and asks for a reboot.
 */
export async function gate(
  host: LocalHost,
  units: UnitManager | null,
  checks: HealthCheck[],
  opts: { phase: GatePhase; signal?: AbortSignal; applyLive?: (to: Revision) => Promise<void>; settings?: GateSettings },
): Promise<GateOutcome & { report: HealthReport }> {
  const settings = opts.settings ?? gateSettings();
  const before = await currentRevision(host);
  const report = await runHealthChecks(checks, units, { deadlineMs: settings.deadlineMs[opts.phase], signal: opts.signal, settings });
  const failedAt = performance.now();
  const decision = await judge(host, report);
  if (decision?.action !== 'fall-back') {
    return { revision: before?.rev.id ?? null, decision, reboot: false, report, message: decision?.action === 'healthy' ? `revision ${shortId(decision.revision)} is healthy` : (decision as { reason?: string })?.reason ?? 'no revision' };
  }
  const message = await applyFallback(host, decision);
  const target = await host.revisions.get(decision.to);
  const live = before !== null && target.os.checksum === before.rev.os.checksum && target.os.kargs.join(' ') === before.rev.os.kargs.join(' ');
  if (live && opts.applyLive) {
    await opts.applyLive(target);
    return { revision: target.id, decision, reboot: false, report, message: `${message}; applied live`, fallbackMs: Math.round(performance.now() - failedAt) };
  }
  return { revision: target.id, decision, reboot: true, report, message: `${message}; reboot to finish` };
}
