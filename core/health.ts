// The health checks that decide whether a revision is kept: each stack unit active with
// no restart loop, each probe passing (HTTP URL or command), and the executables in
// /etc/atomhost/health.d/; what each is and one look at it. A check that fails keeps its
// last output so the rollback can say why. How long a look may take, how often and until
// when they are repeated is the gate's (core/health-gate.ts): nothing here has a timing
// of its own.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runBounded } from './exec.js';
import type { UnitManager } from './unit-manager.js';
import type { Revision } from './revision.js';

export type HealthCheck =
  | { name: string; kind: 'unit'; unit: string; maxRestarts?: number }
  | { name: string; kind: 'http'; url: string }
  | { name: string; kind: 'command'; command: string[] }
  | { name: string; kind: 'script'; path: string };

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What the check saw last: the unit state, the HTTP status, the command's output. */
  output: string;
}

export interface HealthReport {
  ok: boolean;
  results: CheckResult[];
  /** One line naming the first failing check and what it saw. */
  reason: string | null;
}

export const HEALTH_D = '/etc/atomhost/health.d';

/** Executables in health.d (name order), as checks; a missing directory means none. */
export async function scriptChecks(dir = HEALTH_D): Promise<HealthCheck[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return [];
  }
  const out: HealthCheck[] = [];
  for (const n of names) {
    const st = await stat(join(dir, n)).catch(() => null);
    if (st?.isFile() && st.mode & 0o111) out.push({ name: `health.d/${n}`, kind: 'script', path: join(dir, n) });
  }
  return out;
}

/** How long one look at a probe may take; the gate's settings (core/health-gate.ts) say. */
export interface ProbeLimits {
  /** A command probe or health.d script is killed with its process group after this. */
  probeTimeoutMs: number;
  /** An HTTP probe is abandoned after this. */
  httpTimeoutMs: number;
}

/**
 * One look at a check. `baseRestarts` holds each unit's restart count at the first look,
 * so later looks see the restarts since the check began (a restart loop).
 */
export async function checkOnce(check: HealthCheck, units: UnitManager | null, baseRestarts: Map<string, number>, limits: ProbeLimits, signal?: AbortSignal): Promise<CheckResult> {
  try {
    switch (check.kind) {
      case 'unit': {
        if (!units) return { name: check.name, ok: false, output: 'no systemd connection to check the unit' };
        const s = await units.state(check.unit);
        const base = baseRestarts.get(check.unit) ?? s.restarts;
        if (!baseRestarts.has(check.unit)) baseRestarts.set(check.unit, s.restarts);
        const restarts = s.restarts - base;
        const limit = check.maxRestarts ?? 2;
        if (restarts > limit) return { name: check.name, ok: false, output: `${check.unit} restarted ${restarts} times during the check (restart loop)` };
        const ok = s.activeState === 'active' && s.subState !== 'auto-restart';
        return { name: check.name, ok, output: `${check.unit} ${s.activeState}/${s.subState}${s.result && s.result !== 'success' ? ` (${s.result})` : ''}` };
      }
      case 'http': {
        const timeout = AbortSignal.timeout(limits.httpTimeoutMs);
        const res = await fetch(check.url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'manual' });
        const body = (await res.text()).slice(0, 200);
        return { name: check.name, ok: res.ok, output: `HTTP ${res.status} ${body.trim()}`.trim() };
      }
      case 'command':
      case 'script': {
        const [cmd, ...args] = check.kind === 'script' ? [check.path] : check.command;
        const r = await runBounded(cmd, args, { timeoutMs: limits.probeTimeoutMs, signal });
        const output = `${r.stdout}${r.stderr}`.trim().split('\n').slice(-5).join('\n');
        if (r.timedOut) return { name: check.name, ok: false, output: `timed out after ${limits.probeTimeoutMs / 1000} s (killed with its process group)` };
        return { name: check.name, ok: r.exitCode === 0, output: `exit ${r.exitCode}${output ? `: ${output}` : ''}` };
      }
    }
  } catch (err) {
    return { name: check.name, ok: false, output: (err as Error).message };
  }
}

/** The checks of a revision's stack: each container's and host unit's unit and probe, then health.d. */
export async function stackChecks(rev: Revision, healthDir = HEALTH_D): Promise<HealthCheck[]> {
  const checks: HealthCheck[] = [];
  const members = [
    ...Object.values(rev.containers).map((c) => ({ name: c.name, unit: `${c.name}.service`, probe: c.probe })),
    // Host units are named by their unit; their checks read "containerd.service unit".
    ...Object.entries(rev.hostUnits ?? {}).map(([unit, h]) => ({ name: unit, unit, probe: h.probe })),
  ];
  for (const m of members) {
    checks.push({ name: `${m.name} unit`, kind: 'unit', unit: m.unit });
    if (m.probe && 'http' in m.probe) checks.push({ name: `${m.name} probe`, kind: 'http', url: m.probe.http });
    else if (m.probe) checks.push({ name: `${m.name} probe`, kind: 'command', command: m.probe.command });
  }
  return [...checks, ...(await scriptChecks(healthDir))];
}
