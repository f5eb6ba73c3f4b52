// The stack supervisor: the current revision's system containers, by role (network →
// runtime → engine → kubelet), watched through systemd's PropertiesChanged, reported
// with their health (unit active without a restart loop, probe passing) and their last
// journal lines when something is wrong; restarted by role; and, after every change,
// the health gate that keeps the new revision or puts the last healthy one back.
import { UnhealthyError } from '../core/errors.js';
import { stackChecks, type CheckResult } from '../core/health.js';
import { applyRevision, reconcileAtBoot, type ReconcileOutcome } from '../core/reconcile.js';
import type { LocalHost } from '../core/local-host.js';
import { shortId, type Revision } from '../core/revision.js';
import { currentRevision, gate, gateSettings, lookOnce, type GatePhase } from '../core/health-gate.js';
import { roleOrder } from '../core/stack-manifest.js';
import type { UnitState } from '../core/unit-manager.js';
import type { SystemdClient } from '../systemd/client.js';
import type { ContainerPort } from '../core/container-port.js';
import { failureLines } from './unit-journal.js';

export interface ContainerHealth {
  name: string;
  role: string;
  unit: string;
  image: string;
  digest: string;
  activeState: string;
  subState: string;
  restarts: number;
  result: string | null;
  probe: string | null;
  healthy: boolean;
  /** What made it unhealthy (unit state, restart loop, probe output). */
  detail: string;
  /** The unit's last journal lines when it is not healthy. */
  journal: string[];
}

export interface RoleHealth {
  role: string;
  healthy: boolean;
  containers: ContainerHealth[];
}

export interface StackStatus {
  revision: string | null;
  state: string | null;
  stateReason: string | null;
  healthy: boolean;
  /** When the probe results were measured (ISO time); null when none are (yet) for this revision. */
  probesMeasured: string | null;
  roles: RoleHealth[];
}

/** One look at a revision's probes, kept for callers who may not run them. */
interface ProbeLook {
  revision: string;
  /** Date.now() and its ISO text, when the look began. */
  at: number;
  measured: string;
  results: CheckResult[];
}

/** Supervision events, for the daemon's journal. */
export type SupervisorEvent =
  | { kind: 'unit-failed'; unit: string; state: UnitState; journal: string[] }
  | { kind: 'restart-loop'; unit: string; state: UnitState; journal: string[] }
  | { kind: 'unit-recovered'; unit: string; state: UnitState };

/** What the stack supervises: each container's unit and each host unit the revision names by role. */
function members(rev: Revision | null): { name: string; unit: string; role: string; image: string; digest: string }[] {
  if (!rev) return [];
  return [
    ...Object.values(rev.containers).map((c) => ({ name: c.name, unit: `${c.name}.service`, role: c.role ?? 'other', image: c.image, digest: c.digest })),
    ...Object.entries(rev.hostUnits ?? {}).map(([unit, h]) => ({ name: unit, unit, role: h.role, image: '(host unit)', digest: '' })),
  ];
}

/** The unit a health check named "<member> unit" or "<member> probe" is about. */
const unitOfCheck = (check: string) => {
  const name = check.replace(/ (unit|probe)$/, '');
  return name.endsWith('.service') ? name : `${name}.service`;
};

/** Restarts within this window of one another make a loop. */
const LOOP_RESTARTS = 3;

export class StackSupervisor {
  readonly #watches = new Map<string, () => void>();
  readonly #last = new Map<string, UnitState>();
  /** The last look at the probes, and the one under way for callers who may not run them. */
  #probes: ProbeLook | null = null;
  #probing: Promise<ProbeLook> | null = null;
  /** When such a caller last caused a look (Date.now()). */
  #lastUnprivilegedLook = -Infinity;

  constructor(
    readonly host: LocalHost,
    /** Loaded on first use: the registry client and image store are not needed to watch units. */
    readonly containers: () => Promise<ContainerPort>,
    readonly units: SystemdClient,
    readonly onEvent: (e: SupervisorEvent) => void = () => {},
  ) {}

  async #revision(): Promise<Revision | null> {
    return (await currentRevision(this.host))?.rev ?? null;
  }

  /**
   * The stack right now: each container's unit state and probe. `probes: 'run'` (a caller
   * who may change the host) looks at the probes now. `probes: 'cached'` (anyone else)
   * may not make the host run them on demand: it gets the last look at this revision's
   * probes, and only when that is older than the gate's `statusProbeEveryMs` a new one,
   * at most one per that interval for all such callers together (concurrent callers share
   * it). Either way the reply says when the probes were measured. Unit states are read
   * from systemd each time (no process runs for them).
   */
  async status(opts: { probes: 'run' | 'cached' } = { probes: 'run' }): Promise<StackStatus> {
    const rev = await this.#revision();
    if (!rev) return { revision: null, state: null, stateReason: null, healthy: true, probesMeasured: null, roles: [] };
    const look = opts.probes === 'run' ? await this.#lookAtProbes(rev) : await this.#cachedProbes(rev);
    const byName = new Map<string, CheckResult>((look?.results ?? []).map((r) => [r.name, r]));
    const roles = new Map<string, ContainerHealth[]>();
    for (const c of members(rev)) {
      const unit = c.unit;
      const s = await this.units.state(unit).catch(() => ({ name: unit, activeState: 'unknown', subState: 'unknown', restarts: 0, result: undefined }) as UnitState);
      const probe = byName.get(`${c.name} probe`) ?? null;
      const looping = s.subState === 'auto-restart' || s.restarts >= LOOP_RESTARTS;
      const healthy = s.activeState === 'active' && !looping && (probe?.ok ?? true);
      const state = `${s.activeState}/${s.subState}${s.result && s.result !== 'success' ? ` (${s.result})` : ''}`;
      const detail = looping ? `${unit} restarted ${s.restarts} times (restart loop), now ${state}` : s.activeState !== 'active' ? `${unit} is ${state}` : probe && !probe.ok ? `probe: ${probe.output}` : 'ok';
      // Journal lines are shown to privileged callers only: do not read them for the others.
      const journal = healthy || opts.probes === 'cached' ? [] : await this.units.journal(unit, 10).catch(() => []);
      const role = c.role;
      roles.set(role, [
        ...(roles.get(role) ?? []),
        { name: c.name, role, unit, image: c.image, digest: c.digest, activeState: s.activeState, subState: s.subState, restarts: s.restarts, result: s.result ?? null, probe: probe?.output ?? null, healthy, detail, journal },
      ]);
    }
    const list = [...roles.entries()].sort((a, b) => roleOrder(a[0]) - roleOrder(b[0])).map(([role, cs]) => ({ role, healthy: cs.every((c) => c.healthy), containers: cs }));
    return { revision: rev.id, state: rev.state, stateReason: rev.reason ?? null, healthy: list.every((r) => r.healthy), probesMeasured: look?.measured ?? null, roles: list };
  }

  /** One look at the revision's probes now (health.d is the gate's business, not this report's); kept for #cachedProbes. */
  async #lookAtProbes(rev: Revision): Promise<ProbeLook> {
    const at = Date.now();
    const probes = (await stackChecks(rev)).filter((c) => c.kind === 'http' || c.kind === 'command');
    const look = { revision: rev.id, at, measured: new Date(at).toISOString(), results: await lookOnce(probes, null) };
    if (!this.#probes || this.#probes.at <= at) this.#probes = look;
    return look;
  }

  async #cachedProbes(rev: Revision): Promise<ProbeLook | null> {
    const every = gateSettings().statusProbeEveryMs;
    const last = this.#probes?.revision === rev.id ? this.#probes : null;
    if (last && Date.now() - last.at < every) return last;
    if (this.#probing) return this.#probing;
    if (Date.now() - this.#lastUnprivilegedLook < every) return last;
    this.#lastUnprivilegedLook = Date.now();
    this.#probing = this.#lookAtProbes(rev).finally(() => (this.#probing = null));
    return this.#probing;
  }

  /** Restarts every unit of a role (in the order they were installed) and waits for each job. */
  async restartRole(role: string): Promise<{ message: string; revision: string | null }> {
    const rev = await this.#revision();
    const names = members(rev).filter((c) => c.role === role).map((c) => c.unit);
    if (!names.length) {
      const roles = [...new Set(members(rev).map((c) => c.role))];
      throw new UnhealthyError(`no container or host unit has the role ${role} (roles of this stack: ${roles.join(', ') || 'none'})`, { role });
    }
    for (const u of names) {
      // A unit that looped until its start limit refuses a restart until it is reset.
      await this.units.resetFailed(u);
      await this.units.restart(u);
    }
    return { message: `Restarted ${names.join(', ')} (role ${role})`, revision: rev?.id ?? null };
  }

  /**
   * After a change: the health gate. Healthy: the revision is kept (and becomes the
   * fallback). Not: the last healthy revision is put back (live when only containers and
   * units differ) and an UnhealthyError says why, with the failing check's output.
   */
  async gateChange(title: string, phase: GatePhase, signal?: AbortSignal): Promise<ReconcileOutcome> {
    const rev = await this.#revision();
    if (!rev) return { revision: null, decision: null, reboot: false, message: 'no revision' };
    const port = await this.containers();
    const applyLive = (to: Revision) => applyRevision(this.host, port, this.units, to);
    const out = await gate(this.host, this.units, await stackChecks(rev), { phase, signal, applyLive });
    await this.rewatch();
    const d = out.decision;
    if (d?.action === 'fall-back' || d?.action === 'give-up') {
      const failing = out.report.results.filter((r) => !r.ok);
      const journal = (
        await Promise.all(
          // A failing probe's container says why in its journal just as a failing unit does.
          [...new Set(failing.filter((r) => / (unit|probe)$/.test(r.name)).map((r) => unitOfCheck(r.name)))].map(async (unit) =>
            (await this.units.journal(unit, 5).catch(() => [] as string[])).map((l) => `${unit}: ${l}`),
          ),
        )
      ).flat();
      const what = d.action === 'fall-back' ? `${out.message}` : `revision ${shortId(d.revision)} failed its health checks (${d.reason})`;
      throw new UnhealthyError(`${title}: ${what}${journal.length ? `\n  ${journal.join('\n  ')}` : ''}`, {
        revision: rev.id,
        fallback: d.action === 'fall-back' ? d.to : null,
        reboot: out.reboot,
        fallbackMs: out.fallbackMs ?? null,
        checks: out.report.results,
        journal,
      });
    }
    return out;
  }

  /** At boot, before the stack's units: the containers and units of the booted revision. */
  async reconcileAtBoot(): Promise<ReconcileOutcome> {
    return reconcileAtBoot(this.host, await this.containers(), this.units);
  }

  /** Watches the current revision's units; reports failures and restart loops once each. */
  async rewatch(): Promise<void> {
    const rev = await this.#revision();
    const wanted = new Set(members(rev).map((c) => c.unit));
    for (const [u, stop] of this.#watches) {
      if (!wanted.has(u)) {
        stop();
        this.#watches.delete(u);
        this.#last.delete(u);
      }
    }
    for (const u of wanted) {
      if (this.#watches.has(u)) continue;
      this.#last.set(u, await this.units.state(u).catch(() => ({ name: u, activeState: 'unknown', subState: 'unknown', restarts: 0 })));
      this.#watches.set(u, await this.units.watch(u, (s) => void this.#changed(u, s)));
    }
  }

  async #changed(unit: string, s: UnitState): Promise<void> {
    const prev = this.#last.get(unit);
    this.#last.set(unit, s);
    if (!prev) return;
    // A unit that just failed may not have its own lines in the journal yet (unit-journal.ts).
    const journal = () => failureLines(this.units, unit, 10);
    if (s.restarts >= LOOP_RESTARTS && prev.restarts < LOOP_RESTARTS) this.onEvent({ kind: 'restart-loop', unit, state: s, journal: await journal() });
    else if (s.activeState === 'failed' && prev.activeState !== 'failed') this.onEvent({ kind: 'unit-failed', unit, state: s, journal: await journal() });
    else if (s.activeState === 'active' && prev.activeState !== 'active' && prev.activeState !== 'activating' && prev.activeState !== 'unknown') this.onEvent({ kind: 'unit-recovered', unit, state: s });
  }

  stop(): void {
    for (const stop of this.#watches.values()) stop();
    this.#watches.clear();
  }
}
