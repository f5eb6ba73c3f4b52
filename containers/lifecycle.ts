// System containers as part of host revisions: install, update, rollback and uninstall
// each produce a new revision (a deployment of the same OS commit, so every boot entry
// boots a matching stack) and apply live through systemd. A live start is tried before
// the revision is written: a container that fails to start leaves the revision list,
// the previous container and its unit as they were.
import { join } from 'node:path';
import { readdir, rm, unlink } from 'node:fs/promises';
import { atomicWriteFile } from '../core/atomic-write.js';
import { AtomhostError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import type { ContainerPort, PreparedContainer } from '../core/container-port.js';
import type { LocalHost } from '../core/local-host.js';
import { noProgress, task, type ProgressSink } from '../core/progress.js';
import { revisionIdFromOrigin, shortId, type ContainerSpec, type HealthProbe, type Revision, type UnitSpec } from '../core/revision.js';
import { bootedByCmdline } from '../core/health-gate.js';
import { existsSync } from 'node:fs';
import { roleOrder } from '../core/stack-manifest.js';
import { checkProbe, checkRole, checkValues } from '../core/values.js';
import type { UnitManager } from '../core/unit-manager.js';
import { checkName, prepareContainer, UnitStore, type PrepareSpec } from './bundle.js';
import { releaseHostUnit, writeHostUnitDropIns } from './host-units.js';
import { applyHostFiles, planHostFiles } from './hostfs.js';
import { failureLines } from './unit-journal.js';
import { run } from '../core/exec.js';
import { splitReference } from './reference.js';
import { ContainerStartFailedError } from './errors.js';
import { ImageStore } from './store.js';

export interface ContainerOptions {
  /** systemd, for applying live; null works offline (the next reconcile applies). */
  units: UnitManager | null;
  /** Root of the running system whose unit files are written live (default /). */
  hostRoot?: string;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface ContainerStatus extends ContainerSpec {
  unit: string;
  activeState: string | null;
  subState: string | null;
}

export interface ContainerResult {
  message: string;
  revision: string;
  container: ContainerSpec | null;
}

export class SystemContainers implements ContainerPort {
  readonly host: LocalHost;
  readonly store: ImageStore;
  readonly unitStore: UnitStore;
  readonly #opts: ContainerOptions;

  constructor(host: LocalHost, opts: ContainerOptions) {
    this.host = host;
    this.store = new ImageStore(host.sysroot);
    this.unitStore = new UnitStore(host.sysroot.path);
    this.#opts = opts;
  }

  /** Where checkouts live: the OS's shared /var (on a booted host, /var/lib/atomhost/containers). */
  containersDir(osname: string): string {
    return join(this.host.sysroot.path, 'ostree', 'deploy', osname, 'var', 'lib', 'atomhost', 'containers');
  }

  // ---- ContainerPort ----

  /** `reference` is the qualified name registries.conf resolved the image to (what a revision records). */
  async pull(image: string, opts: { digest?: string; signal?: AbortSignal; progress?: ProgressSink }): Promise<{ digest: string; reference: string }> {
    const { digest, reference } = await this.store.pull(image, opts);
    return { digest, reference };
  }

  async prepare(spec: PrepareSpec): Promise<PreparedContainer> {
    const rev = await this.#current();
    return prepareContainer(this.store, this.unitStore, this.containersDir(rev.os.osname), spec);
  }

  /** Makes the running units match `to`: files written, reloaded, then stopped/started in role order. */
  async apply(to: Revision, from: Revision | null, units: UnitManager, opts: { atBoot?: boolean } = {}): Promise<void> {
    const root = this.#opts.hostRoot ?? '/';
    const fromUnits = from?.units ?? {};
    const removed = Object.keys(from?.containers ?? {}).filter((n) => !to.containers[n]);
    // Stopped (a queued start job at boot is replaced too) and disabled before the file goes.
    for (const c of sortByRole(removed.map((n) => from!.containers[n])).reverse()) {
      await units.stop(`${c.name}.service`).catch(() => {});
      await units.disable?.(`${c.name}.service`).catch(() => {});
    }
    const fromHost = from?.hostUnits ?? {};
    const toHost = to.hostUnits ?? {};
    for (const unit of Object.keys(fromHost)) if (!toHost[unit]) await releaseHostUnit(units, unit);
    for (const [key, spec] of Object.entries(fromUnits)) {
      if (to.units[key]) continue;
      // What a container's tmpfiles.d entry made goes with it (D and r lines), as Atomic did.
      if (isTmpfiles(spec.path)) await tmpfiles(root, '--remove', spec.path);
      await unlink(join(root, spec.path)).catch(() => {});
    }
    for (const spec of Object.values(to.units)) await atomicWriteFile(join(root, spec.path), await this.unitStore.get(spec.sha256), { mode: 0o640 });
    // /exports/hostfs files: those of removed containers go, the new set is written before
    // any container starts (etcd mounts its /etc/NAME). A file nobody owns is kept, with a
    // warning: install refused it already, and a boot must not fail over it.
    const plan = await planHostFiles(root, from, to, { strict: false });
    await applyHostFiles(plan, this.unitStore);
    for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
    await writeHostUnitDropIns(root, fromHost, toHost);
    await units.reload();
    // tmpfiles.template applied as at install under Atomic (state and run directories exist before the start).
    for (const spec of Object.values(to.units)) if (isTmpfiles(spec.path)) await tmpfiles(root, '--create', spec.path);
    // Containers and the OS's host units of the stack start together, in role order.
    const hostUnits = Object.entries(toHost).map(([unit, spec]) => ({ name: unit, role: spec.role, host: true as const }));
    for (const c of sortByRole<{ name: string; role?: string; host?: true }>([...Object.values(to.containers), ...hostUnits])) {
      if (c.host) {
        await units.enableRuntime?.(c.name);
        const state = await units.state(c.name);
        if (state.activeState === 'active') continue;
        await (opts.atBoot && units.queueStart ? units.queueStart(c.name) : units.start(c.name));
        continue;
      }
      const unit = `${c.name}.service`;
      const container = to.containers[c.name];
      const before = from?.containers[c.name];
      const changed = !before || before.digest !== container.digest || before.checkout !== container.checkout || fromUnits[unit]?.sha256 !== to.units[unit]?.sha256;
      const state = await units.state(unit);
      await units.enable?.(unit);
      if (opts.atBoot && units.queueStart) {
        if (state.activeState !== 'active') await units.queueStart(unit);
        continue;
      }
      if (changed || state.activeState !== 'active') {
        // A new image (or a fallback to the old one) starts with a clean record: restarts of
        // what ran before are not this container's restart loop.
        await units.resetFailed?.(unit).catch(() => {});
        await (changed && state.activeState === 'active' ? units.restart(unit) : units.start(unit));
      }
    }
  }

  // ---- user verbs ----

  async list(): Promise<ContainerStatus[]> {
    const rev = await this.#current();
    const out: ContainerStatus[] = [];
    for (const c of sortByRole(Object.values(rev.containers))) {
      const state = this.#opts.units ? await this.#opts.units.state(`${c.name}.service`).catch(() => null) : null;
      out.push({ ...c, unit: `${c.name}.service`, activeState: state?.activeState ?? null, subState: state?.subState ?? null });
    }
    return out;
  }

  async install(image: string, opts: { name?: string; values?: Record<string, string>; role?: string; probe?: HealthProbe } = {}): Promise<ContainerResult> {
    const name = opts.name ?? splitReference(image).repository.split('/').pop()!;
    checkName(name);
    checkRole(opts.role);
    const osRoot = this.host.sysroot.deployments.find((d) => d.booted)?.path ?? this.host.sysroot.deployments[0]?.path ?? null;
    // Applied live, the unit also lands beside the running system's own units.
    refuseHostUnitName(name, [osRoot, this.#opts.units ? (this.#opts.hostRoot ?? '/') : null]);
    const values = checkValues(opts.values ?? {});
    if (opts.probe) opts = { ...opts, probe: checkProbe(opts.probe) };
    const current = await this.#base();
    if (current.containers[name]) throw new InvalidArgumentError(`a container named ${name} is already installed (${current.containers[name].image}); use \`atomhost container update ${name}\` or choose another --name`, { field: 'name', value: name });
    const progress = this.#opts.progress ?? noProgress;
    // Recorded under the qualified name (a short name resolved through registries.conf), so
    // an update pulls the same image whatever the search registries say later.
    const { digest, reference } = await task(progress, `Pulling ${image}`, () => this.pull(image, { signal: this.#opts.signal, progress }));
    const prepared = await this.prepare({ name, image: reference, digest, values, role: opts.role });
    if (opts.probe) prepared.container.probe = opts.probe;
    return this.#switch(`container install ${name}`, current, name, prepared);
  }

  async update(name: string): Promise<ContainerResult> {
    const current = await this.#base();
    const c = this.#get(current, name);
    const progress = this.#opts.progress ?? noProgress;
    const { digest } = await task(progress, `Pulling ${c.image}`, () => this.pull(c.image, { signal: this.#opts.signal, progress }));
    if (digest === c.digest) return { message: `${name} is up to date (${c.image} is still ${digest.slice(0, 19)})`, revision: current.id, container: c };
    const prepared = await this.prepare({ name, image: c.image, digest, values: c.values, role: c.role });
    if (c.probe) prepared.container.probe = c.probe;
    return this.#switch(`container update ${name}`, current, name, prepared);
  }

  /** Goes back to the digest this container had before its current one (in the revision history). */
  async rollback(name: string): Promise<ContainerResult> {
    const current = await this.#base();
    const c = this.#get(current, name);
    let rev: Revision | null = current;
    let previous: ContainerSpec | null = null;
    while (rev?.parent) {
      rev = await this.host.revisions.find(rev.parent);
      const p = rev?.containers[name];
      if (p && (p.digest !== c.digest || JSON.stringify(p.values) !== JSON.stringify(c.values))) {
        previous = p;
        break;
      }
    }
    if (!previous) throw new NotFoundError(`${name} has no earlier version in the revision history to roll back to`, { name });
    await this.pull(previous.image, { digest: previous.digest, signal: this.#opts.signal });
    const prepared = await this.prepare({ name, image: previous.image, digest: previous.digest, values: previous.values, role: previous.role });
    if (previous.probe) prepared.container.probe = previous.probe;
    return this.#switch(`container rollback ${name}`, current, name, prepared);
  }

  async uninstall(name: string): Promise<ContainerResult> {
    const current = await this.#base();
    const c = this.#get(current, name);
    const units = this.#opts.units;
    if (units) await units.stop(`${name}.service`).catch(() => {});
    const rev = await this.host.commitRevision(`container uninstall ${name}`, (d) => {
      delete d.containers[name];
      for (const key of Object.keys(d.units)) if (key === `${name}.service` || key.startsWith(`${name}.`)) delete d.units[key];
      return d;
    });
    if (units) await this.apply(rev, current, units);
    return { message: `Uninstalled ${name} (${c.image}); revision ${shortId(rev.id)}`, revision: rev.id, container: null };
  }

  /**
   * Removes images, layers and checkouts that no bootable revision references: those
   * named by a deployment (a boot entry). Older revision records stay as history; going
   * back to one of their images pulls it again by digest.
   */
  async gc(): Promise<{ images: number; layers: number; checkouts: number }> {
    const deps = await this.host.sysroot.reload();
    const revs = (await Promise.all(deps.map((d) => this.host.revisions.find(revisionIdFromOrigin(d.origin))))).filter((r): r is Revision => r !== null);
    const digests = new Set(revs.flatMap((r) => Object.values(r.containers).map((c) => c.digest)));
    const checkouts = new Set(revs.flatMap((r) => Object.values(r.containers).map((c) => c.checkout)));
    const r = await this.store.gc(digests);
    let removed = 0;
    const osnames = new Set(revs.map((x) => x.os.osname));
    for (const os of osnames) {
      const base = this.containersDir(os);
      for (const name of await readdir(base).catch(() => [] as string[])) {
        for (const v of await readdir(join(base, name)).catch(() => [] as string[])) {
          const dir = join(base, name, v);
          if (!checkouts.has(dir)) {
            await rm(dir, { recursive: true, force: true });
            removed++;
          }
        }
      }
    }
    return { ...r, checkouts: removed };
  }

  // ---- internals ----

  /**
   * The revision a container change builds on. On a booted host that is the booted
   * deployment's revision: the change is applied live to the running stack and gated
   * against it. When an OS change is already deployed but not booted (the default is not
   * the booted deployment), a container change is refused: building on the default would
   * gate the running stack against a revision it does not run, and building on the
   * booted one would drop the pending OS change. Container changes made one after the
   * other (each a deployment of the booted OS commit) build on each other.
   */
  async #base(): Promise<Revision> {
    const deps = await this.host.sysroot.reload();
    const booted = deps.find((d) => d.booted) ?? bootedByCmdline(this.host.sysroot.path, deps);
    // Container-only changes deploy the same OS again: only another commit or other kernel
    // arguments in the default make an OS change pending.
    const def = deps[0];
    if (booted && def && booted.index !== def.index && (def.checksum !== booted.checksum || def.osname !== booted.osname || def.kargs.join(' ') !== booted.kargs.join(' '))) {
      const pending = revisionIdFromOrigin(deps[0].origin);
      throw new AtomhostError(
        'AH_ERR_BUSY',
        `an OS change is pending: revision ${pending ? shortId(pending) : deps[0].checksum.slice(0, 12)} is the default but the host runs deployment ${booted.index}; reboot into it first, or \`atomhost rollback\` to drop it, then change containers`,
        { details: { pending, booted: booted.index } },
      );
    }
    return this.#current();
  }

  async #current(): Promise<Revision> {
    const rev = await this.host.defaultRevision();
    if (!rev) throw new NotFoundError('the host has no revision yet: deploy an OS first (atomhost rebase)');
    return rev;
  }

  #get(rev: Revision, name: string): ContainerSpec {
    const c = rev.containers[name];
    if (!c) throw new NotFoundError(`no container named ${name} (installed: ${Object.keys(rev.containers).join(', ') || 'none'})`, { name });
    return c;
  }

  /**
   * Tries the new container live first (when systemd is there), then writes the revision.
   * On a failed start the previous unit and container are restored and nothing is recorded.
   */
  async #switch(title: string, current: Revision, name: string, prepared: PreparedContainer): Promise<ContainerResult> {
    const units = this.#opts.units;
    const next = { ...current, containers: { ...current.containers, [name]: prepared.container }, units: { ...withoutUnitsOf(current.units, name), ...prepared.units } };
    if (units) {
      // A host file this container does not own is refused before anything changes.
      try {
        await planHostFiles(this.#opts.hostRoot ?? '/', current, next as Revision, { strict: true });
      } catch (err) {
        if (!Object.values(current.containers).some((c) => c.checkout === prepared.container.checkout)) await rm(prepared.container.checkout, { recursive: true, force: true });
        throw err;
      }
      try {
        await this.apply(next as Revision, current, units);
        await this.#waitRunning(`${name}.service`, units);
      } catch (err) {
        const lines = await failureLines(units, `${name}.service`);
        await units.stop(`${name}.service`).catch(() => {});
        await this.apply(current, next as Revision, units).catch(() => {});
        if (!Object.values(current.containers).some((c) => c.checkout === prepared.container.checkout)) await rm(prepared.container.checkout, { recursive: true, force: true });
        throw new ContainerStartFailedError(title, name, (err as Error).message, lines, err);
      }
    }
    const rev = await this.host.commitRevision(title, (d) => {
      d.containers[name] = prepared.container;
      d.units = { ...withoutUnitsOf(d.units, name), ...prepared.units };
      return d;
    });
    const how = units ? 'running' : 'recorded; it starts when atomhostd applies the revision';
    return { message: `${title.replace('container ', '')}: ${name} ${prepared.container.image} ${prepared.container.digest.slice(0, 19)} ${how}; revision ${shortId(rev.id)}`, revision: rev.id, container: prepared.container };
  }

  /**
   * A unit counts as started when it stays active, without a restart, for a moment: runc
   * run exits at once on a bad config or a command that fails, and on a loaded machine that
   * can take longer than any fixed sleep, so the unit is watched until it has held.
   */
  async #waitRunning(unit: string, units: UnitManager): Promise<void> {
    const HOLD_MS = 2000;
    const LIMIT_MS = 15_000;
    const start = Date.now();
    const first = await units.state(unit);
    let heldSince: number | null = null;
    for (;;) {
      const s = await units.state(unit);
      const state = `${s.activeState}/${s.subState}${s.result && s.result !== 'success' ? ` (${s.result})` : ''}`;
      if (s.restarts > first.restarts || s.subState === 'auto-restart') throw new Error(`${unit} exited and was restarted (${state})`);
      if (s.activeState === 'failed' || s.activeState === 'inactive') throw new Error(`${unit} is ${state}`);
      if (s.activeState === 'active' && s.subState === 'running') heldSince ??= Date.now();
      else heldSince = null;
      if (heldSince !== null && Date.now() - heldSince >= HOLD_MS) return;
      if (Date.now() - start > LIMIT_MS) throw new Error(`${unit} did not stay running (${state})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const isTmpfiles = (path: string) => path.startsWith('/etc/tmpfiles.d/');

/** systemd-tmpfiles on one container's entry; a line it cannot apply is reported, not fatal (runc's error says the rest). */
async function tmpfiles(root: string, action: '--create' | '--remove', path: string): Promise<void> {
  // With --root, systemd-tmpfiles reads the named file beneath that root too.
  const r = await run('systemd-tmpfiles', [action, ...(root === '/' ? [] : [`--root=${root}`]), path]).catch((err: Error) => ({ exitCode: -1, stderr: err.message }));
  if (r.exitCode !== 0) process.stderr.write(`warning: systemd-tmpfiles ${action} ${path}: ${r.stderr.trim()}\n`);
}

function withoutUnitsOf(units: Record<string, UnitSpec>, name: string): Record<string, UnitSpec> {
  return Object.fromEntries(Object.entries(units).filter(([k]) => k !== `${name}.service` && !k.startsWith(`${name}.`)));
}

function sortByRole<T extends { role?: string; name: string }>(xs: T[]): T[] {
  return [...xs].sort((a, b) => roleOrder(a.role) - roleOrder(b.role) || a.name.localeCompare(b.name));
}

/**
 * A container's unit is NAME.service in /etc/systemd/system: it must not shadow a unit the
 * OS ships (dbus, sshd, systemd-journald…) or one of atomhost's own.
 */
function refuseHostUnitName(name: string, roots: (string | null)[]): void {
  const unit = `${name}.service`;
  // The OS the container's unit will live beside: the deployment's (and the running system's) own unit directories.
  const dirs = roots.filter((r): r is string => r !== null).flatMap((r) => ['usr/lib/systemd/system', 'lib/systemd/system', 'usr/etc/systemd/system'].map((d) => join(r, d)));
  const shipped = dirs.find((d) => existsSync(join(d, unit)));
  if (name.startsWith('atomhost') || shipped) {
    throw new InvalidArgumentError(`container name ${JSON.stringify(name)} would replace the host's ${unit}${shipped ? ` (${shipped}/${unit})` : ''}; choose another --name`, { field: 'name', value: name });
  }
}
