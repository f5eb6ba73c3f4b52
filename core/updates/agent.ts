// The update agent of atomhostd: an explicit state machine (docs/updates.md), one cycle
// at a time, run by the daemon's own timer (interval + jitter from the policy) and by
// `atomhost updates check`. It stages with the host's own verbs (upgrade, or deploy of
// the graph's commit: the code `atomhost upgrade` runs, as a daemon transaction), asks
// systemd for the reboot, and after the boot waits for the health gate's verdict on the
// new revision before it runs the post-healthy hooks and releases the fleet lock.
import type { LocalHost } from '../local-host.js';
import type { TransactionResult, TxContext, UpdatePreview } from '../host-api.js';
import { AtomhostError } from '../errors.js';
import { currentRevision } from '../health-gate.js';
import { revisionIdFromOrigin, shortId } from '../revision.js';
import { loadUpdatesConfig, updatesDir, type UpdatesConfig } from './config.js';
import { inWindow, nextWindow } from './windows.js';
import { chooseUpdate, fetchGraph } from './graph.js';
import { describeFailure, runHooks } from './hooks.js';
import { loadPersisted, savePersisted, type Persisted, type UpdateStateName, type UpdateTarget, type UpdatesReport } from './state.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The FleetLock protocol as the agent needs it (fleet/client.ts's FleetLockClient satisfies it). */
export interface RebootLock {
  /** Asks for a reboot slot; true when granted. */
  preReboot(): Promise<boolean>;
  /** Gives the slot back (harmless when not held). */
  steadyState(): Promise<void>;
}

export type AgentEvent = 'updateState' | 'updateReboot' | 'updateHookFailed';

export interface AgentDeps {
  host: LocalHost;
  /** Runs fn as a daemon transaction (one at a time, in status, in the journal). */
  transaction<T>(title: string, fn: (tx: TxContext) => Promise<T>): Promise<T>;
  /** Asks systemd to reboot (reboot.target); never exec's reboot. */
  reboot(): Promise<void>;
  /** Makes the fleet lock client of a fleet_lock policy (atomhostd: fleet/policy-lock.ts). */
  lock?(cfg: NonNullable<UpdatesConfig['fleetLock']>): Promise<RebootLock>;
  log(level: 'info' | 'err' | 'warning', id: AgentEvent, message: string, fields?: Record<string, string | number | undefined>): void;
  onChange?(report: UpdatesReport): void;
  now?(): Date;
  configDir?: string;
  /** How often the agent looks again while it waits for the gate after a boot. */
  gatePollMs?: number;
  /** How often it tries again to give the fleet lock slot back after the boot (default 30 s). */
  releaseRetryMs?: number;
}

/** After a healthy boot, an unreachable lock server is asked again this often (docs/updates.md). */
export const RELEASE_RETRY_MS = 30_000;

/** A node's default rollout wariness: stable per machine, spread over 0..1 (an app-specific hash, not the machine-id). */
function defaultWariness(): number {
  let id = 'unknown';
  try {
    id = readFileSync('/etc/machine-id', 'utf8').trim();
  } catch {
    // no machine-id: every such node is equally wary
  }
  return createHash('sha256').update(`atomhost-updates-wariness:${id}`).digest().readUInt32BE(0) / 0xffffffff;
}

export class UpdateAgent {
  readonly #d: AgentDeps;
  #report: UpdatesReport;
  #cycle: Promise<UpdatesReport> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #rebootAsked = false;
  #config: UpdatesConfig | null = null;
  #started = false;
  #initialized = false;
  #stopped = false;
  /** The last try to give the slot back failed: the next cycle comes after releaseRetryMs. */
  #releaseRetry = false;

  #lock(cfg: NonNullable<UpdatesConfig['fleetLock']>): Promise<RebootLock> {
    if (!this.#d.lock) throw new AtomhostError('AH_ERR_UNSUPPORTED', 'the fleet_lock strategy needs a fleet lock client, and this agent was made without one');
    return this.#d.lock(cfg);
  }

  constructor(deps: AgentDeps) {
    this.#d = deps;
    this.#report = { state: 'initialized', reason: null, since: this.#now().toISOString(), strategy: null, source: null, target: null, paused: false, lastCheck: null, nextCheck: null, nextWindow: null, deadEnd: null, lastFailure: null };
  }

  #now(): Date {
    return this.#d.now?.() ?? new Date();
  }

  report(): UpdatesReport {
    return { ...this.#report };
  }

  /** Starts the timer: a first cycle soon (it finishes what a reboot began), then every interval + jitter. */
  start(firstDelayMs = 1000): void {
    this.#started = true;
    this.#schedule(firstDelayMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#stopped || !this.#started) return; // check() alone (tests) arms no timer
    if (this.#timer) clearTimeout(this.#timer);
    this.#report.nextCheck = new Date(this.#now().getTime() + ms).toISOString();
    this.#timer = setTimeout(() => {
      void this.check().catch(() => {});
    }, ms);
    this.#timer.unref?.();
  }

  #next(): number {
    const c = this.#config;
    if (!c) return 60 * 60_000;
    // While the gate runs after a boot, look again soon; otherwise the policy's interval.
    if (this.#report.state === 'gating') return this.#d.gatePollMs ?? 2000;
    if (this.#releaseRetry) return this.#d.releaseRetryMs ?? RELEASE_RETRY_MS;
    return c.intervalMs + Math.floor(Math.random() * (c.jitterMs + 1));
  }

  #set(state: UpdateStateName, reason: string | null = null, extra: Partial<UpdatesReport> = {}): void {
    const changed = state !== this.#report.state || reason !== this.#report.reason;
    this.#report = { ...this.#report, ...extra, state, reason, since: changed ? this.#now().toISOString() : this.#report.since };
    if (!changed) return;
    const t = this.#report.target;
    this.#d.log(state === 'error' ? 'err' : 'info', 'updateState', `update agent: ${state}${reason ? `: ${reason}` : ''}`, {
      ATOMHOST_UPDATE_STATE: state,
      ATOMHOST_UPDATE_REASON: reason ?? undefined,
      ATOMHOST_UPDATE_VERSION: t?.version ?? undefined,
      ATOMHOST_REVISION: t?.revision ?? undefined,
      PRIORITY: state === 'error' ? 3 : undefined,
    });
    this.#d.onChange?.(this.report());
  }

  /** One cycle now (the timer's, or `atomhost updates check`); a second caller shares the running one. */
  check(): Promise<UpdatesReport> {
    if (!this.#cycle) {
      this.#cycle = this.#run()
        .catch((err: unknown) => {
          this.#set('error', (err as Error).message.split('\n')[0]);
          return this.report();
        })
        .finally(() => {
          this.#cycle = null;
          this.#schedule(this.#next());
        });
    }
    return this.#cycle;
  }

  async pause(): Promise<UpdatesReport> {
    await this.#cycle?.catch(() => {});
    const p = await loadPersisted(this.#d.host.sysroot.path);
    await savePersisted(this.#d.host.sysroot.path, { ...p, paused: true });
    this.#set('paused', 'paused by atomhost updates pause', { paused: true });
    return this.report();
  }

  async resume(): Promise<UpdatesReport> {
    await this.#cycle?.catch(() => {});
    const p = await loadPersisted(this.#d.host.sysroot.path);
    await savePersisted(this.#d.host.sysroot.path, { ...p, paused: false });
    this.#report.paused = false;
    return this.check();
  }

  async #run(): Promise<UpdatesReport> {
    const host = this.#d.host;
    const sysroot = host.sysroot.path;
    let cfg: UpdatesConfig;
    try {
      cfg = await loadUpdatesConfig(this.#d.configDir);
    } catch (err) {
      // An invalid policy: the safe state. Nothing is staged and the host never reboots.
      this.#config = null;
      this.#set('error', `invalid update policy: ${(err as Error).message}`, { strategy: null });
      return this.report();
    }
    this.#config = cfg;
    const p = await loadPersisted(sysroot);
    this.#report = { ...this.#report, strategy: cfg.strategy, source: cfg.graph ? 'graph' : 'refspec', paused: p.paused, lastFailure: p.lastFailure };

    // After a reboot: the gate decides; only then the post-healthy hooks and the lock release.
    if (p.rebootingInto) {
      this.#initialized = true;
      const done = await this.#afterReboot(cfg, p);
      if (!done) return this.report();
    }
    // The slot is given back before anything else (a pause or a new policy does not keep it).
    if (p.releasePending) {
      this.#initialized = true;
      if (!(await this.#releaseSlot(cfg, p))) return this.report();
    }
    // No drop-in at all: off. A host updates itself only once someone wrote a policy.
    if (!cfg.files.length) {
      this.#set('disabled', `no update policy in ${this.#d.configDir ?? updatesDir()}`);
      return this.report();
    }
    // At start on a healthy revision, a slot this node may still hold (the daemon stopped
    // between the grant and the reboot) is given back, as Zincati reports steady at start.
    if (!this.#initialized) {
      this.#initialized = true;
      const cur = cfg.strategy === 'fleet_lock' && cfg.fleetLock ? await currentRevision(host) : null;
      if (cur?.rev.state === 'healthy') {
        const lock = await this.#lock(cfg.fleetLock!);
        await lock.steadyState().catch((err: unknown) => this.#d.log('warning', 'updateState', `update agent: cannot report steady state to ${cfg.fleetLock!.baseUrl}: ${(err as Error).message}`));
      }
    }
    if (!cfg.enabled) {
      this.#set('disabled', `enabled: false in ${cfg.files.join(', ')}`);
      return this.report();
    }
    if (p.paused) {
      this.#set('paused', 'paused by atomhost updates pause');
      return this.report();
    }
    if (this.#rebootAsked) return this.report(); // systemd is taking the host down

    // A staged update still waiting (for its window, lock or a hook) is not checked again.
    let staged = p.staged;
    if (staged) {
      const def = (await host.sysroot.reload())[0];
      if (!def || revisionIdFromOrigin(def.origin) !== staged.revision) staged = null; // someone rolled back or deployed by hand
    }
    if (!staged) {
      this.#set('checking', null, { lastCheck: this.#now().toISOString() });
      const found = await this.#find(cfg, p);
      if (!found) return this.report();
      this.#set('available', null, { target: found.target });
      const result = await this.#d.transaction(`automatic update to ${found.target.version ?? found.target.checksum?.slice(0, 12) ?? 'the latest'}`, found.stage);
      if (!result.revision) throw new AtomhostError('AH_ERR_FAILED', `staging ${found.target.version ?? ''} made no revision`);
      staged = { ...found.target, revision: result.revision };
      await savePersisted(sysroot, { ...p, staged });
    }
    this.#set('staged', null, { target: staged });
    await this.#maybeReboot(cfg, p, staged);
    return this.report();
  }

  /** What to stage, or null (the state then says why). */
  async #find(cfg: UpdatesConfig, p: Persisted): Promise<{ target: UpdateTarget; stage: (tx: TxContext) => Promise<TransactionResult> } | null> {
    const host = this.#d.host;
    if (cfg.graph) {
      const cur = await currentRevision(host);
      if (!cur) throw new AtomhostError('AH_ERR_NOT_FOUND', 'no deployment to update');
      const graph = await fetchGraph(cfg.graph);
      const choice = chooseUpdate(graph, { checksum: cur.rev.os.checksum }, cfg.graph.rolloutWariness ?? defaultWariness(), this.#now());
      this.#report.deadEnd = choice.deadEnd;
      if (!choice.update) {
        this.#set('steady', choice.reason, { target: null });
        return null;
      }
      const node = choice.update;
      if (p.denied.includes(node.payload)) {
        this.#set('steady', `${node.version} failed its health gate on this host before; not taken again`, { target: null });
        return null;
      }
      return { target: { version: node.version, checksum: node.payload, revision: null }, stage: (tx) => host.deploy(node.payload, tx) };
    }
    const preview: UpdatePreview = await host.checkUpdate({ preview: false });
    if (!preview.available || !preview.to) {
      this.#set('steady', `no update on ${preview.refspec}`, { target: null });
      return null;
    }
    if (p.denied.includes(preview.to.checksum)) {
      this.#set('steady', `${preview.to.version ?? preview.to.checksum.slice(0, 12)} failed its health gate on this host before; not taken again`, { target: null });
      return null;
    }
    return { target: { version: preview.to.version, checksum: preview.to.checksum, revision: null }, stage: (tx) => host.upgrade(tx) };
  }

  async #maybeReboot(cfg: UpdatesConfig, p: Persisted, staged: UpdateTarget & { revision: string }): Promise<void> {
    const now = this.#now();
    if (cfg.strategy === 'periodic' && !inWindow(cfg.periodic.windows, cfg.periodic.timeZone, now)) {
      const next = nextWindow(cfg.periodic.windows, cfg.periodic.timeZone, now);
      this.#set('waiting', `outside the maintenance window (next opens ${next?.toISOString() ?? 'never'}, ${cfg.periodic.timeZone})`, { nextWindow: next?.toISOString() ?? null });
      return;
    }
    let lock: RebootLock | null = null;
    if (cfg.strategy === 'fleet_lock') {
      lock = await this.#lock(cfg.fleetLock!);
      let granted = false;
      try {
        granted = await lock.preReboot();
      } catch (err) {
        this.#set('waiting', `fleet lock ${cfg.fleetLock!.baseUrl} (group ${cfg.fleetLock!.group}): ${(err as Error).message}`);
        return;
      }
      if (!granted) {
        this.#set('waiting', `no reboot slot free in fleet lock group ${cfg.fleetLock!.group}`);
        return;
      }
    }
    if (cfg.hooks.preReboot.length) {
      this.#set('waiting', 'running the pre-reboot hooks');
      const failed = await runHooks(cfg.hooks.preReboot);
      if (failed) {
        const why = describeFailure('pre-reboot', failed);
        this.#d.log('err', 'updateHookFailed', `update agent: ${why}; not rebooting`, { PRIORITY: 3, ATOMHOST_HOOK: failed.argv.join(' ') });
        // The node stays up: it gives its slot back rather than hold it while not rebooting.
        if (lock) await lock.steadyState().catch(() => {});
        this.#set('waiting', `${why}; not rebooting (tried again at the next check)`);
        return;
      }
    }
    const cur = await currentRevision(this.#d.host);
    await savePersisted(this.#d.host.sysroot.path, { ...p, staged: null, rebootingInto: { ...staged, from: cur?.rev.id ?? null } });
    this.#rebootAsked = true;
    this.#set('rebooting', `into revision ${shortId(staged.revision)}${staged.version ? ` (${staged.version})` : ''}`);
    this.#d.log('info', 'updateReboot', `update agent: rebooting into revision ${shortId(staged.revision)}`, { ATOMHOST_REVISION: staged.revision, ATOMHOST_UPDATE_VERSION: staged.version ?? undefined });
    await this.#d.reboot();
  }

  /**
   * Gives the fleet lock slot back after the boot (p.releasePending). True when done. An
   * unreachable or refusing server leaves the agent waiting, and the next cycle comes after
   * releaseRetryMs: a node that is back in service must not keep the fleet's only slot.
   */
  async #releaseSlot(cfg: UpdatesConfig, p: Persisted): Promise<boolean> {
    const why = p.releasePending!;
    if (cfg.strategy === 'fleet_lock' && cfg.fleetLock) {
      try {
        await (await this.#lock(cfg.fleetLock)).steadyState();
      } catch (err) {
        this.#releaseRetry = true;
        const every = Math.round((this.#d.releaseRetryMs ?? RELEASE_RETRY_MS) / 1000);
        this.#set('waiting', `${why}; giving the reboot slot back to ${cfg.fleetLock.baseUrl} (group ${cfg.fleetLock.group}) failed: ${(err as Error).message.split('\n')[0]}; trying again every ${every} s`);
        return false;
      }
    }
    // A policy that no longer says fleet_lock has no server to release on: nothing more to do.
    this.#releaseRetry = false;
    p.releasePending = null;
    await savePersisted(this.#d.host.sysroot.path, p);
    if (cfg.strategy === 'fleet_lock') this.#set('steady', `${why}; fleet lock released`, { target: null });
    return true;
  }

  /**
   * The first cycles after the reboot. True when done (the cycle goes on to a new check).
   * The gate passed: post-healthy hooks, then the lock is released. The gate failed (the
   * host fell back to the previous revision): the release is denied for this host, and the
   * lock is released too — the fallback boot is the healthy old revision, so the slot is
   * no longer needed (docs/updates.md).
   */
  async #afterReboot(cfg: UpdatesConfig, p: Persisted): Promise<boolean> {
    const into = p.rebootingInto!;
    if (this.#rebootAsked) return false; // still going down
    const cur = await currentRevision(this.#d.host);
    const rev = await this.#d.host.revisions.find(into.revision);
    const label = `revision ${shortId(into.revision)}${into.version ? ` (${into.version})` : ''}`;
    const lockHeld = cfg.strategy === 'fleet_lock' && !!cfg.fleetLock;
    if (cur?.rev.id === into.revision && rev?.state !== 'failed') {
      if (rev?.state !== 'healthy') {
        this.#set('gating', `waiting for the health gate of ${label}`, { target: into });
        return false;
      }
      if (cfg.hooks.postHealthy.length) {
        const failed = await runHooks(cfg.hooks.postHealthy);
        if (failed) {
          const why = describeFailure('post-healthy', failed);
          this.#d.log('err', 'updateHookFailed', `update agent: ${why}`, { PRIORITY: 3, ATOMHOST_HOOK: failed.argv.join(' ') });
          this.#set('error', `${why} (the lock is kept until it succeeds)`, { target: into });
          return false;
        }
      }
      // Recorded before the release: a retry (or a restarted daemon) never runs the hooks again.
      Object.assign(p, { rebootingInto: null, lastFailure: null, releasePending: lockHeld ? `${label} is healthy` : null });
      await savePersisted(this.#d.host.sysroot.path, p);
      this.#report.lastFailure = null;
      if (lockHeld) return true; // #run gives the slot back next
      this.#set('steady', `${label} is healthy`, { target: null, lastFailure: null });
      return true;
    }
    const def = (await this.#d.host.sysroot.reload())[0];
    if (rev && rev.state !== 'failed' && def && revisionIdFromOrigin(def.origin) === into.revision && cur?.rev.id === into.from) {
      // The reboot never happened (the daemon restarted first): the update is staged again.
      await savePersisted(this.#d.host.sysroot.path, { ...p, rebootingInto: null, staged: { version: into.version, checksum: into.checksum, revision: into.revision } });
      p.rebootingInto = null;
      p.staged = { version: into.version, checksum: into.checksum, revision: into.revision };
      return true;
    }
    // Not on the new revision: it failed its gate and the host fell back (or the boot loader did).
    const failure = `${label} failed its health gate${rev?.reason ? ` (${rev.reason})` : ''}; running revision ${cur ? shortId(cur.rev.id) : '?'}`;
    // p is updated in place: the rest of this cycle must see the denied release (and the slot to give back).
    Object.assign(p, { rebootingInto: null, denied: [...new Set([...p.denied, ...(into.checksum ? [into.checksum] : [])])], lastFailure: failure, releasePending: lockHeld ? failure : null });
    await savePersisted(this.#d.host.sysroot.path, p);
    this.#report.lastFailure = failure;
    this.#d.log('err', 'updateState', `update agent: ${failure}`, { PRIORITY: 3, ATOMHOST_UPDATE_STATE: 'steady', ATOMHOST_REVISION: into.revision });
    return true;
  }
}
