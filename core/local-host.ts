// LocalHost: the host verbs run in this process on one sysroot. The CLI uses it with
// --sysroot; atomhostd runs the same code behind D-Bus. Every change takes the sysroot
// lock, produces or selects a whole revision, and leaves the sysroot as it was on failure.
import { hostname } from 'node:os';
import { AtomhostError, CancelledError, InvalidArgumentError, NotFoundError, NoUpdateError } from './errors.js';
import { Sysroot } from '../ostree-bridge/sysroot.js';
import type { Deployment, TreeDiff } from '../ostree-bridge/types.js';
import { noProgress, pullProgress, task } from './progress.js';
import {
  RevisionStore,
  keepRevisionsSetting,
  newRevision,
  originWithRefspec,
  originWithRevision,
  refspecFromOrigin,
  revisionId,
  revisionIdFromOrigin,
  shortId,
  splitRefspec,
  stackSourceFromOrigin,
  originWithStackSource,
  type Revision,
  type RevisionContent,
  type RevisionPage,
  type RevisionPageQuery,
  type RevisionState,
} from './revision.js';
import { editKargs } from './kargs.js';
import { armBootCounter } from './boot-counter.js';
import { gateSettings } from './gate-settings.js';
import { faultPoint } from './faults.js';
import { checkBootSpace } from './boot-space.js';
import { TransactionJournal } from './tx-journal.js';
import { SignatureChecker } from './commit-signature.js';
import { Ed25519Gate } from './ed25519-signature.js';
import { addRemote, listRemotes, type RemoteAddRequest, type RemoteListEntry } from './remotes.js';
import type { ContainerPort } from './container-port.js';
import {
  API_VERSION,
  type ContainerChange,
  type DeploymentStatus,
  type HostApi,
  type HostStatus,
  type KargsEdit,
  type RevisionDiff,
  type TransactionResult,
  type TxContext,
  type UpdatePreview,
} from './host-api.js';

const CHECKSUM_RE = /^[0-9a-f]{64}$/;

/** The remote a deployment follows (REMOTE of its REMOTE:REF origin), or null. */
function remoteOfOrigin(origin: string | null): string | null {
  const refspec = refspecFromOrigin(origin);
  return refspec ? splitRefspec(refspec).remote : null;
}


export class LocalHost implements HostApi {
  readonly sysroot: Sysroot;
  readonly revisions: RevisionStore;
  readonly journal: TransactionJournal;
  /** The system-container machinery, when this process has it (whole-stack upgrades need it). */
  containerPort: ContainerPort | null = null;
  /** Makes the container port on first use (set by the CLI and the daemon; core does not import containers/). */
  static portFactory: ((host: LocalHost) => Promise<ContainerPort>) | null = null;

  async port(): Promise<ContainerPort | null> {
    if (!this.containerPort && LocalHost.portFactory) this.containerPort = await LocalHost.portFactory(this);
    return this.containerPort;
  }

  private constructor(sysroot: Sysroot) {
    this.sysroot = sysroot;
    // libostree checks GPG while it pulls; ed25519 is checked by atomhost, after the pull.
    sysroot.commitGate = new Ed25519Gate(sysroot);
    this.revisions = new RevisionStore(sysroot.path);
    this.journal = new TransactionJournal(sysroot.path);
  }

  static async open(sysrootPath: string): Promise<LocalHost> {
    return new LocalHost(await Sysroot.open(sysrootPath));
  }

  async close(): Promise<void> {
    this.sysroot.close();
  }

  // ---- reads ----

  async status(): Promise<HostStatus> {
    const deps = await this.sysroot.reload();
    const rollbackIdx = rollbackIndex(deps);
    const out: DeploymentStatus[] = [];
    const signatures = await new SignatureChecker(this.sysroot).check(
      deps.map((d) => ({ checksum: d.checksum, remote: remoteOfOrigin(d.origin) })),
    );
    for (const [i, d] of deps.entries()) {
      const commit = this.#commitOrNull(d.checksum);
      out.push({
        index: d.index,
        osname: d.osname,
        refspec: refspecFromOrigin(d.origin),
        checksum: d.checksum,
        version: commit?.version ?? null,
        timestamp: commit ? new Date(commit.timestamp * 1000).toISOString() : null,
        kargs: d.kargs,
        deploySerial: d.deploySerial,
        default: d.index === 0,
        rollback: d.index === rollbackIdx,
        booted: d.booted,
        staged: d.staged,
        pinned: d.pinned,
        revision: await this.revisions.find(revisionIdFromOrigin(d.origin)),
        signature: signatures[i],
      });
    }
    const def = out[0];
    const revOf = (p: (d: DeploymentStatus) => boolean) => out.find(p)?.revision?.id ?? null;
    return {
      apiVersion: API_VERSION,
      kind: 'Host',
      metadata: { name: hostname(), sysroot: this.sysroot.path },
      spec: { osname: def?.osname ?? null, refspec: def?.refspec ?? null, revision: def?.revision?.id ?? null },
      status: {
        booted: revOf((d) => d.booted),
        staged: revOf((d) => d.staged),
        rollback: revOf((d) => d.rollback),
        deployments: out,
      },
    };
  }

  // ---- remotes ----

  async remoteAdd(req: RemoteAddRequest): Promise<RemoteListEntry> {
    return this.sysroot.withLock(() => addRemote(this.sysroot, req));
  }

  async remoteList(): Promise<RemoteListEntry[]> {
    return listRemotes(this.sysroot);
  }

  async remoteDelete(name: string): Promise<void> {
    await this.sysroot.withLock(() => this.sysroot.deleteRemote(name));
  }

  /** History newest first, one page at a time: reads the index and only the records on the page. */
  async listRevisions(page: RevisionPageQuery = {}): Promise<RevisionPage> {
    return this.revisions.page(page);
  }

  async diff(from: string, to: string): Promise<RevisionDiff> {
    const a = await this.revisions.resolve(from);
    const b = await this.revisions.resolve(to);
    let files: TreeDiff | null = null;
    if (a.os.checksum !== b.os.checksum && this.#commitOrNull(a.os.checksum) && this.#commitOrNull(b.os.checksum)) {
      files = await this.sysroot.diff(a.os.checksum, b.os.checksum);
    } else if (a.os.checksum === b.os.checksum) {
      files = { added: [], removed: [], modified: [] };
    }
    const unitNames = [...new Set([...Object.keys(a.units), ...Object.keys(b.units)])].sort();
    return {
      from: a.id,
      to: b.id,
      os: { from: { checksum: a.os.checksum, version: a.os.version }, to: { checksum: b.os.checksum, version: b.os.version }, files },
      kargs: { from: a.os.kargs, to: b.os.kargs },
      containers: containerChanges(a, b),
      units: unitNames
        .map((name) => ({ name, from: a.units[name]?.sha256 ?? null, to: b.units[name]?.sha256 ?? null }))
        .filter((u) => u.from !== u.to),
    };
  }

  /** The revision of the default deployment (index 0). */
  async defaultRevision(): Promise<Revision | null> {
    const d = (await this.sysroot.reload())[0];
    return d ? this.revisions.find(revisionIdFromOrigin(d.origin)) : null;
  }

  async setRevisionState(id: string, state: RevisionState, reason?: string): Promise<void> {
    await this.revisions.setState(id, state, reason);
  }

  // ---- updates ----

  async checkUpdate(opts: { preview: boolean }, ctx: TxContext = {}): Promise<UpdatePreview> {
    const progress = ctx.progress ?? noProgress;
    // A long-lived daemon must see what other writers (ostree admin, stack follow) changed.
    await this.sysroot.reload();
    const def = this.#requireDefault();
    if (stackSourceFromOrigin(def.origin)) return (await import('./stack-upgrade.js')).stackCheck(this, opts, ctx);
    const refspec = this.#refspecOf(def);
    const { remote, ref } = splitRefspec(refspec);
    const current = await this.revisions.find(revisionIdFromOrigin(def.origin));
    if (remote) {
      await task(progress, `Checking ${refspec} for updates`, () =>
        this.sysroot.pull({ remote, refs: [ref], commitOnly: true, signal: ctx.signal, onProgress: pullProgress(progress) }),
      );
    }
    const latest = this.sysroot.resolveRev(refspec);
    if (!latest) throw new NotFoundError(`ref ${refspec} does not exist`, { refspec });
    const available = latest !== def.checksum;
    if (available) await this.#refuseFailed(await this.#contentFor(def, { checksum: latest, refspec }));
    const commit = this.sysroot.readCommit(latest);
    let files: TreeDiff | null = null;
    if (available && opts.preview) {
      if (remote) {
        await task(progress, `Downloading ${commit.version ?? latest.slice(0, 12)} for the preview`, () =>
          this.sysroot.pull({ remote, refs: [latest], signal: ctx.signal, onProgress: pullProgress(progress) }),
        );
      }
      files = await this.sysroot.diff(def.checksum, latest);
    }
    return {
      refspec,
      available,
      from: { checksum: def.checksum, version: this.#commitOrNull(def.checksum)?.version ?? null, revision: current?.id ?? null },
      to: available ? { checksum: latest, version: commit.version, timestamp: new Date(commit.timestamp * 1000).toISOString() } : null,
      kargs: { from: def.kargs, to: def.kargs },
      files,
      containers: [],
    };
  }

  async upgrade(ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const progress = ctx.progress ?? noProgress;
      await this.#adopt();
      const def = this.#requireDefault();
      if (stackSourceFromOrigin(def.origin)) return (await import('./stack-upgrade.js')).stackUpgrade(this, def, ctx);
      const refspec = this.#refspecOf(def);
      const { remote, ref } = splitRefspec(refspec);
      if (remote) {
        await task(progress, `Pulling ${refspec}`, () =>
          this.sysroot.pull({ remote, refs: [ref], signal: ctx.signal, onProgress: pullProgress(progress) }),
        );
      }
      faultPoint('upgrade:pulled');
      const latest = this.sysroot.resolveRev(refspec);
      if (!latest) throw new NotFoundError(`ref ${refspec} does not exist`, { refspec });
      if (latest === def.checksum) throw new NoUpdateError(`no update available: ${refspec} is at ${def.checksum.slice(0, 12)}, which is the default deployment`);
      const current = this.sysroot.readCommit(def.checksum);
      const next = this.sysroot.readCommit(latest);
      if (next.timestamp < current.timestamp) {
        throw new AtomhostError('AH_ERR_FAILED', `${refspec} points to ${latest.slice(0, 12)} (${next.version ?? 'no version'}), which is older than the deployed ${current.version ?? def.checksum.slice(0, 12)}; use \`atomhost deploy\` to go back on purpose`);
      }
      return this.#deployRevision('upgrade', def, { checksum: latest, refspec }, ctx, { refuseFailed: true });
    });
  }

  async deploy(target: string, ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const progress = ctx.progress ?? noProgress;
      await this.#adopt();
      const def = this.#requireDefault();
      const refspec = this.#refspecOf(def);
      const { remote, ref } = splitRefspec(refspec);
      let checksum: string;
      if (CHECKSUM_RE.test(target)) {
        checksum = target;
        if (!this.#commitOrNull(checksum) && remote) {
          await task(progress, `Pulling ${checksum.slice(0, 12)}`, () =>
            this.sysroot.pull({ remote, refs: [checksum], signal: ctx.signal, onProgress: pullProgress(progress) }),
          );
        }
        if (!this.#commitOrNull(checksum)) throw new NotFoundError(`commit ${checksum} is not in the repository nor on remote ${remote ?? '(none)'}`, { checksum });
      } else {
        if (remote) {
          await task(progress, `Fetching the history of ${refspec}`, () =>
            this.sysroot.pull({ remote, refs: [ref], commitOnly: true, depth: -1, signal: ctx.signal, onProgress: pullProgress(progress) }),
          );
        }
        const found = this.#findVersion(refspec, target);
        if (!found) throw new NotFoundError(`version ${target} is not in the history of ${refspec}`, { version: target, refspec });
        checksum = found;
        if (remote) {
          await task(progress, `Pulling ${target}`, () =>
            this.sysroot.pull({ remote, refs: [checksum], signal: ctx.signal, onProgress: pullProgress(progress) }),
          );
        }
      }
      if (checksum === def.checksum) {
        return { title: `deploy ${target}`, changed: false, revision: revisionIdFromOrigin(def.origin), message: `${target} is already the default deployment` };
      }
      return this.#deployRevision(`deploy ${target}`, def, { checksum, refspec }, ctx);
    });
  }

  async rebase(refspec: string, opts: { osname?: string; kargs?: string[] }, ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const progress = ctx.progress ?? noProgress;
      await this.#adopt();
      const def = this.sysroot.deployments[0];
      const osname = opts.osname ?? def?.osname;
      if (!osname) throw new InvalidArgumentError('this sysroot has no deployment yet: give the OS name with --os NAME', { field: 'osname' });
      const { remote, ref } = splitRefspec(refspec);
      if (!ref) throw new AtomhostError('AH_ERR_INVALID_REFSPEC', `invalid refspec ${JSON.stringify(refspec)}: expected REMOTE:REF or REF`);
      if (remote) {
        const remotes = await this.sysroot.remotes();
        if (!remotes.includes(remote)) throw new NotFoundError(`remote ${remote} is not configured in ${this.sysroot.repoPath} (add it with \`ostree remote add --repo=${this.sysroot.repoPath} ${remote} URL\`)`, { remote });
        await task(progress, `Pulling ${refspec}`, () => this.sysroot.pull({ remote, refs: [ref], signal: ctx.signal, onProgress: pullProgress(progress) }));
      }
      const checksum = this.sysroot.resolveRev(refspec);
      if (!checksum) throw new NotFoundError(`ref ${refspec} does not exist`, { refspec });
      return this.#deployRevision(`rebase ${refspec}`, def ?? null, { checksum, refspec, osname, kargs: opts.kargs }, ctx);
    });
  }

  async rollback(ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const progress = ctx.progress ?? noProgress;
      await this.#adopt();
      const deps = this.sysroot.deployments;
      const r = rollbackIndex(deps);
      if (r === null) throw new NotFoundError('no rollback deployment: the sysroot has only one deployment of this OS');
      const def = deps[0];
      const order = [r, ...deps.map((d) => d.index).filter((i) => i !== r)];
      const from = revisionIdFromOrigin(def.origin);
      const to = revisionIdFromOrigin(deps[r].origin);
      const fromState = from ? (await this.revisions.find(from))?.state : undefined;
      // Durability, step by step (a killed process loses nothing written; this is about power loss):
      //  - the journal is written without fsync: libostree syncs the filesystem (syncfs of the
      //    sysroot and of /boot) before it switches the boot entries, so the journal is on disk
      //    before the boot order changes; a power loss before that leaves the old order and at
      //    most an unreadable journal, which recovery reads as none.
      //  - rollback:begun: the order is unchanged; recovery finds `from` still default and ends.
      //  - rollback:written: the order is changed; recovery finds `to` default and `from` still
      //    in fromState, and finishes the state change.
      //  - the state change is fully synced (file and directory) before the journal's removal,
      //    which needs no sync (core/tx-journal.ts): a journal brought back by a power loss
      //    finds `from` no longer in fromState and changes nothing.
      await this.journal.begin({ kind: 'rollback', from, to, ...(fromState ? { fromState } : {}) }, 'none');
      faultPoint('rollback:begun');
      await task(progress, 'Writing the new boot order', () => this.sysroot.writeDeployments(order));
      faultPoint('rollback:written');
      if (from) await this.revisions.setState(from, 'rolled-back', `rolled back to ${to ? shortId(to) : deps[r].checksum.slice(0, 12)}`);
      await this.journal.end();
      const counting = await this.#armBootCounter();
      return { title: 'rollback', changed: true, revision: to, message: `Moved ${this.#label(deps[r], to)} to be the default; reboot to use it${counting}` };
    });
  }

  async kargs(edit: KargsEdit, ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      await this.#adopt();
      const def = this.#requireDefault();
      const next = editKargs(def.kargs, edit);
      if (next.join(' ') === def.kargs.join(' ')) {
        return { title: 'kargs', changed: false, revision: revisionIdFromOrigin(def.origin), message: 'kernel arguments unchanged' };
      }
      return this.#deployRevision('kargs', def, { checksum: def.checksum, refspec: this.#refspecOf(def), kargs: next }, ctx);
    });
  }

  async cleanup(opts: { rollback: boolean }, ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const progress = ctx.progress ?? noProgress;
      const deps = this.sysroot.deployments;
      let message = 'Cleaned up the repository and boot directories';
      if (opts.rollback) {
        const r = rollbackIndex(deps);
        if (r === null) throw new NotFoundError('no rollback deployment to remove');
        if (deps[r].pinned) throw new InvalidArgumentError(`deployment ${r} is pinned; unpin it first (atomhost unpin ${r})`, { index: r });
        await task(progress, 'Removing the rollback deployment', () => this.sysroot.writeDeployments(deps.map((d) => d.index).filter((i) => i !== r)));
        message = `Removed the rollback deployment ${this.#label(deps[r], revisionIdFromOrigin(deps[r].origin))}`;
      }
      await task(progress, 'Pruning', () => this.sysroot.cleanup());
      return { title: 'cleanup', changed: true, revision: revisionIdFromOrigin(this.sysroot.deployments[0]?.origin ?? null), message };
    });
  }

  async setPinned(index: number, pinned: boolean, _ctx: TxContext = {}): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      const d = this.sysroot.deployments[index];
      if (!d) throw new NotFoundError(`no deployment at index ${index} (there are ${this.sysroot.deployments.length})`, { index });
      if (d.staged) throw new InvalidArgumentError(`deployment ${index} is staged and cannot be pinned`, { index });
      await this.sysroot.setPinned(index, pinned);
      return { title: pinned ? 'pin' : 'unpin', changed: d.pinned !== pinned, revision: revisionIdFromOrigin(d.origin), message: `Deployment ${index} is ${pinned ? 'now pinned' : 'no longer pinned'}` };
    });
  }

  /**
   * Makes a new revision from the default one (mutate gets a copy of its content) and
   * deploys the same OS commit with it: a container- or unit-only change still gets a
   * deployment of its own, so every boot entry boots a matching stack.
   */
  async commitRevision(title: string, mutate: (draft: RevisionContent) => RevisionContent | Promise<RevisionContent>, ctx: TxContext = {}): Promise<Revision> {
    return this.sysroot.withLock(async () => {
      await this.#adopt();
      const def = this.#requireDefault();
      const parent = await this.revisions.get(revisionIdFromOrigin(def.origin)!);
      const draft = await mutate(structuredClone({ os: parent.os, containers: parent.containers, units: parent.units, ...(parent.hostUnits ? { hostUnits: parent.hostUnits } : {}), parent: parent.id }));
      draft.parent = parent.id;
      faultPoint('commit:mutated');
      const result = await this.#deployContent(title, def, draft, ctx);
      return this.revisions.get(result.revision!);
    });
  }

  /** Deploys a whole revision's content as the new default (caller holds the lock). */
  async deployContent(title: string, from: Deployment | null, content: RevisionContent, ctx: TxContext = {}, guard: { refuseFailed?: boolean } = {}): Promise<TransactionResult> {
    return this.#deployContent(title, from, content, ctx, guard);
  }

  /** Sets (or with null clears) the stack source the default deployment follows. */
  async followStack(source: string | null): Promise<TransactionResult> {
    return this.sysroot.withLock(async () => {
      await this.#adopt();
      const def = this.#requireDefault();
      // Loaded here only: the manifest module brings the YAML parser, which no other verb needs.
      if (source) (await import('./stack-manifest.js')).checkStackSource(source);
      await this.sysroot.writeOrigin(def.index, originWithStackSource(def.origin ?? '', source));
      return { title: 'stack follow', changed: true, revision: revisionIdFromOrigin(def.origin), message: source ? `The next upgrade follows the stack manifest at ${source}` : 'The host follows its OS refspec only' };
    });
  }

  findVersion(refspec: string, version: string): string | null {
    return this.#findVersion(refspec, version);
  }

  // ---- internals ----

  /** Deploys checksum as the new default with a new revision derived from `from`. */
  async #deployRevision(
    title: string,
    from: Deployment | null,
    target: { checksum: string; refspec: string; osname?: string; kargs?: string[] },
    ctx: TxContext,
    guard: { refuseFailed?: boolean } = {},
  ): Promise<TransactionResult> {
    return this.#deployContent(title, from, await this.#contentFor(from, target), ctx, guard);
  }

  /** The revision an OS change makes: the new commit with `from`'s containers and units. */
  async #contentFor(from: Deployment | null, target: { checksum: string; refspec: string; osname?: string; kargs?: string[] }): Promise<RevisionContent> {
    const parent = from ? await this.revisions.find(revisionIdFromOrigin(from.origin)) : null;
    const commit = this.sysroot.readCommit(target.checksum);
    const { remote } = splitRefspec(target.refspec);
    return {
      os: {
        osname: target.osname ?? from!.osname,
        remote,
        refspec: target.refspec,
        checksum: target.checksum,
        version: commit.version,
        kargs: target.kargs ?? from?.kargs ?? [],
      },
      containers: structuredClone(parent?.containers ?? {}),
      units: structuredClone(parent?.units ?? {}),
      ...(parent?.hostUnits ? { hostUnits: structuredClone(parent.hostUnits) } : {}),
      parent: parent?.id ?? null,
    };
  }

  /**
   * On a booted host with GRUB boot counting, the new default gets a bounded number of
   * boots to reach the health gate (core/boot-counter.ts). The deployment is already
   * written: a counter that cannot be armed is reported, not thrown.
   */
  async #armBootCounter(): Promise<string> {
    if (!this.sysroot.deployments.some((d) => d.booted)) return '';
    try {
      const { bootTries } = gateSettings();
      return (await armBootCounter(this.sysroot.path, bootTries)) ? ` (boot counting armed: ${bootTries} tries)` : '';
    } catch (err) {
      return `; warning: boot counting not armed: ${(err as Error).message}`;
    }
  }

  /** An upgrade never picks again what the health gate rejected; `deploy` by name still can. */
  async #refuseFailed(content: RevisionContent): Promise<void> {
    const prior = await this.revisions.find(revisionId(content));
    if (prior?.state === 'failed') {
      throw new NoUpdateError(`no update available: the newest release is revision ${shortId(prior.id)}, which failed its health checks (${prior.reason ?? 'no reason recorded'}); atomhost does not pick it again`);
    }
  }

  async #deployContent(title: string, from: Deployment | null, content: RevisionContent, ctx: TxContext, guard: { refuseFailed?: boolean } = {}): Promise<TransactionResult> {
    const progress = ctx.progress ?? noProgress;
    if (ctx.signal?.aborted) throw new CancelledError(title);
    if (guard.refuseFailed) await this.#refuseFailed(content);
    // A new OS commit is checked again here: it may have come into the repo without a gated
    // pull (already there, or put there by another tool).
    if (content.os.remote && content.os.checksum !== from?.checksum) await this.sysroot.commitGate?.verify(content.os.remote, [content.os.checksum]);
    // A kernel that does not fit in /boot would fail at shutdown (staged) or half-way: refuse now.
    const others = this.sysroot.deployments.map((d) => d.checksum);
    if (!others.includes(content.os.checksum)) await checkBootSpace(this.sysroot, content.os.checksum, others);
    // On a booted host an OS change is staged, as rpm-ostree does: /etc edits made before the
    // reboot are carried over, because ostree-finalize-staged merges /etc at shutdown. The
    // checkout is written now; the kernel goes to /boot at shutdown, which is why its room
    // was checked above. Container-only changes are written directly.
    const booted = this.sysroot.deployments.find((d) => d.booted);
    const stage = !!booted && booted.osname === content.os.osname && booted.checksum !== content.os.checksum && process.env.ATOMHOST_NO_STAGE !== '1';
    // A staged revision's record says so until a boot runs it: one whose finalization never
    // happened is recognized at the next boot (dropUnfinalized).
    const rev = newRevision(content, stage ? 'staged' : 'deployed');
    // The record is written before the deployment that names it: a crash in between
    // leaves an unreferenced record (which recovery removes), never a deployment without one.
    // Durability (power loss; a killed process loses nothing written):
    //  - tx:begun: the journal is fully synced (file and directory) before the record exists,
    //    so no power loss can keep the record and lose the journal that lets recovery remove it.
    //  - deploy:record-written: the record's content is synced before its rename ('data'), so
    //    it is never torn; the rename is made durable by libostree, which syncs the filesystem
    //    before it writes the boot entries that name the record (or, staged, at finalization).
    //    Lost with a power loss before that, the record is simply not there, nor its deployment.
    //  - deploy:deployed: the journal's removal needs no sync (core/tx-journal.ts): brought back,
    //    it names a revision a deployment names, which recovery reports as completed.
    //  The index is never synced (RevisionStore: a checked cache of the records).
    await this.journal.begin({ kind: 'deploy', title, revision: rev.id });
    faultPoint('tx:begun');
    await this.revisions.save(rev, { sync: 'data' });
    faultPoint('deploy:record-written');
    // Keep what else the previous origin says (the stack source, other tools' keys).
    const base = from && from.osname === content.os.osname && from.origin ? from.origin : '';
    const origin = originWithRevision(originWithRefspec(base, content.os.refspec), rev.id);
    if (stage) await this.#adoptLiveRevision(booted!);
    try {
      await task(progress, `${stage ? 'Staging' : 'Deploying'} ${content.os.version ?? content.os.checksum.slice(0, 12)}`, () =>
        this.sysroot.deploy({
          osname: content.os.osname,
          checksum: content.os.checksum,
          origin,
          kargs: content.os.kargs,
          mergeIndex: stage ? booted!.index : from && from.osname === content.os.osname ? from.index : undefined,
          stage,
        }),
      );
    } catch (err) {
      // Nothing names the new record: undo it, as recovery would after a crash.
      await this.recover();
      throw err;
    }
    faultPoint('deploy:deployed');
    await this.journal.end();
    const counting = await this.#armBootCounter();
    return {
      title,
      changed: true,
      revision: rev.id,
      message: `${stage ? 'Staged' : 'Deployed'} ${content.os.version ?? content.os.checksum.slice(0, 12)} as revision ${shortId(rev.id)}; reboot to use it${stage ? ' (finalized at shutdown)' : ''}${counting}`,
    };
  }

  /**
   * Finishes or undoes a transaction that a crash interrupted (the daemon also calls this
   * at start): a deploy whose deployment was never written loses its orphan record; a
   * rollback whose boot order was written gets its revision states finished.
   */
  async recover(): Promise<string | null> {
    const open = await this.journal.read();
    if (!open) return null;
    const run = async () => {
      const deps = await this.sysroot.reload();
      const named = new Set(deps.map((d) => revisionIdFromOrigin(d.origin)).filter(Boolean));
      let outcome: string;
      if (open.kind === 'deploy') {
        if (open.revision && !named.has(open.revision)) {
          await this.revisions.remove(open.revision);
          outcome = `undid the interrupted ${open.title}: its revision ${shortId(open.revision)} was never deployed`;
        } else outcome = `the interrupted ${open.title} had completed`;
        // libostree leaves partial deployment directories to its cleanup.
        await this.sysroot.cleanup();
      } else {
        const now = revisionIdFromOrigin(deps[0]?.origin ?? null);
        if (!open.from || now !== open.to || now === open.from) outcome = 'the interrupted rollback had not changed the boot order';
        // A state set since the rollback began (its own, or a later verdict) is left alone.
        else if (open.fromState && (await this.revisions.get(open.from)).state !== open.fromState) outcome = 'the interrupted rollback had completed';
        else {
          await this.revisions.setState(open.from, 'rolled-back', `rolled back to ${open.to ? shortId(open.to) : '?'}`);
          outcome = 'finished the interrupted rollback';
        }
      }
      await this.journal.end();
      return outcome;
    };
    return this.sysroot.locked ? run() : this.sysroot.withLock(run);
  }

  /**
   * Before staging: a container change made live on this boot wrote its revision as a new
   * deployment of the booted commit, but the host runs it on the booted deployment.
   * Finalization keeps the booted deployment and drops that one, so the booted
   * deployment takes over its origin (same commit, same kernel arguments: the same boot):
   * the rollback entry after the upgrade is the stack that was running, not an older one.
   * The whole origin, not only the revision: `stack follow` after a live change also
   * wrote only that deployment, and a rollback must keep following the stack.
   */
  async #adoptLiveRevision(booted: Deployment): Promise<void> {
    const def = this.sysroot.deployments[0];
    if (!def || def.booted || def.checksum !== booted.checksum || def.kargs.join(' ') !== booted.kargs.join(' ')) return;
    if (!def.origin || !revisionIdFromOrigin(def.origin) || def.origin === booted.origin) return;
    await this.sysroot.writeOrigin(booted.index, def.origin);
  }

  /**
   * At boot: a staged deployment that shutdown never finalized (the power went, or
   * ostree-finalize-staged failed) is gone, but its record still says `staged`. Such
   * records are removed (the upgrade can simply run again); returns their ids. Then the
   * history's retention runs (RevisionStore.prune: ATOMHOST_KEEP_REVISIONS newest, every
   * record a deployment names, every failed one). Both find their candidates in the index.
   */
  async dropUnfinalized(): Promise<string[]> {
    // A bad retention setting must not stop the boot: nothing is pruned and the journal says why.
    let keep: number | null = null;
    try {
      keep = keepRevisionsSetting();
    } catch (err) {
      process.stderr.write(`warning: ${(err as Error).message}; no revision records pruned\n`);
    }
    return this.sysroot.withLock(async () => {
      if (await this.journal.read()) return [];
      const named = new Set((await this.sysroot.reload()).map((d) => revisionIdFromOrigin(d.origin)).filter((id): id is string => !!id));
      const dropped: string[] = [];
      for (const rev of await this.revisions.inState('staged')) {
        if (named.has(rev.id)) continue;
        await this.revisions.remove(rev.id);
        dropped.push(rev.id);
      }
      if (keep !== null) await this.revisions.prune({ named, keep });
      return dropped;
    });
  }

  /** Gives every deployment without a revision one (deployments made by other tools). */
  async #adopt(): Promise<void> {
    await this.recover();
    const deps = this.sysroot.deployments;
    for (const d of [...deps].reverse()) {
      const id = revisionIdFromOrigin(d.origin);
      if (id && (await this.revisions.has(id))) continue;
      const refspec = refspecFromOrigin(d.origin) ?? '';
      const commit = this.#commitOrNull(d.checksum);
      const rev = newRevision(
        {
          os: { osname: d.osname, remote: splitRefspec(refspec).remote, refspec, checksum: d.checksum, version: commit?.version ?? null, kargs: d.kargs },
          containers: {},
          units: {},
          parent: null,
        },
        d.booted ? 'booted' : 'deployed',
      );
      await this.revisions.save(rev);
      await this.sysroot.writeOrigin(d.index, originWithRevision(d.origin ?? `[origin]\nrefspec=${refspec}\n`, rev.id));
    }
  }

  #requireDefault(): Deployment {
    const d = this.sysroot.deployments[0];
    if (!d) throw new NotFoundError(`sysroot ${this.sysroot.path} has no deployment yet; make one with \`atomhost rebase REMOTE:REF --os NAME\``);
    return d;
  }

  #refspecOf(d: Deployment): string {
    const r = refspecFromOrigin(d.origin);
    if (!r) throw new AtomhostError('AH_ERR_INVALID_REFSPEC', `deployment ${d.index} (${d.checksum.slice(0, 12)}) has no refspec in its origin; use \`atomhost rebase REMOTE:REF\``);
    return r;
  }

  #findVersion(refspec: string, version: string): string | null {
    let rev = this.sysroot.resolveRev(refspec);
    const seen = new Set<string>();
    while (rev && !seen.has(rev)) {
      seen.add(rev);
      const c = this.#commitOrNull(rev);
      if (!c) return null;
      if (c.version === version) return rev;
      rev = c.parent;
    }
    return null;
  }

  #commitOrNull(checksum: string) {
    try {
      return this.sysroot.readCommit(checksum);
    } catch {
      return null;
    }
  }

  #label(d: Deployment, revision: string | null): string {
    const v = this.#commitOrNull(d.checksum)?.version;
    return `${d.osname} ${v ?? d.checksum.slice(0, 12)}${revision ? ` (revision ${shortId(revision)})` : ''}`;
  }
}

/**
 * The deployment `rollback` would make default, as rpm-ostree picks it: when the booted
 * deployment is not first, the booted one; otherwise the next deployment of the same OS.
 */
export function rollbackIndex(deps: Deployment[]): number | null {
  if (deps.length < 2) return null;
  const booted = deps.findIndex((d) => d.booted);
  if (booted > 0) return booted;
  const next = deps.findIndex((d, i) => i > 0 && d.osname === deps[0].osname && !d.staged);
  return next > 0 ? next : null;
}


function containerChanges(a: RevisionContent, b: RevisionContent): ContainerChange[] {
  const names = [...new Set([...Object.keys(a.containers), ...Object.keys(b.containers)])].sort();
  return names
    .map((name) => ({
      name,
      image: b.containers[name]?.image ?? a.containers[name]?.image ?? null,
      from: a.containers[name]?.digest ?? null,
      to: b.containers[name]?.digest ?? null,
    }))
    .filter((c) => c.from !== c.to);
}
