// Typed access to one OSTree sysroot through libostree. Calls on one Sysroot are
// serialized (libostree objects are not safe for concurrent use); long calls run on
// worker threads inside the addon.
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomhostError, CancelledError, InvalidSysrootError, NotFoundError, SignatureError, SysrootLockedError } from './errors.js';
import { loadAddon, type NativeError, type NativeSysroot } from './native.js';
import type { CommitDirEntry, CommitInfo, DeployOptions, Deployment, GpgSignature, PullOptions, RemoteInfo, TreeDiff } from './types.js';

export interface AddRemoteOptions {
  gpgVerify?: boolean;
  /** Key files (armored or binary) imported into the remote's own keyring. */
  gpgImport?: string[];
  /** ostree's KEYTYPE=inline:KEY or KEYTYPE=file:PATH. */
  signVerify?: string[];
  /** Further options of the remote's config group, written as given (`ostree remote add --set`). */
  set?: [string, string][];
  ifNotExists?: boolean;
}

/**
 * Signature checks that atomhost makes itself for some remotes (core/ed25519-signature.ts):
 * their pulls run with libostree's sign-verify off, then verify() sees the pulled commits.
 */
export interface CommitGate {
  /** Whether this gate checks the remote's commits (then libostree's sign-verify is off for it). */
  handles(remote: string): Promise<boolean>;
  /** Throws (a SignatureError) when a commit is not acceptable. */
  verify(remote: string, checksums: string[]): Promise<void>;
}

const CHECKSUM_RE = /^[0-9a-f]{64}$/;

export class Sysroot {
  readonly path: string;
  #native: NativeSysroot;
  #queue: Promise<unknown> = Promise.resolve();
  #deployments: Deployment[] = [];
  #locked = false;
  /** Set by the host (core/local-host.ts); without it, libostree's own sign-verify applies. */
  commitGate: CommitGate | null = null;

  private constructor(path: string, native: NativeSysroot) {
    this.path = path;
    this.#native = native;
  }

  /** Opens and loads the sysroot at `path`; a directory that is not a sysroot is refused by name. */
  static async open(path: string): Promise<Sysroot> {
    try {
      const st = await stat(join(path, 'ostree', 'repo', 'config'));
      if (!st.isFile()) throw new Error('ostree/repo/config is not a file');
    } catch (err) {
      throw new InvalidSysrootError(path, 'it has no ostree/repo (make one with `ostree admin init-fs`)', err);
    }
    const { Sysroot: NativeCtor } = loadAddon();
    const s = new Sysroot(path, new NativeCtor(path));
    await s.reload();
    return s;
  }

  #run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async reload(): Promise<Deployment[]> {
    this.#deployments = await this.#run(() => this.#native.load().catch((e) => Promise.reject(this.#wrap(e, 'loading sysroot'))));
    return this.#deployments;
  }

  /** Deployments as of the last load, newest default first (index 0 boots by default). */
  get deployments(): Deployment[] {
    return this.#deployments;
  }

  /** The sysroot's repository (libostree opens it by fd, so its own path is /proc/self/fd/N). */
  get repoPath(): string {
    return join(this.path, 'ostree', 'repo');
  }

  get locked(): boolean {
    return this.#locked;
  }

  /** Releases the sysroot's open files (its file system can then be unmounted). */
  close(): void {
    this.#native.unload();
    this.#deployments = [];
  }

  /** Runs fn holding the sysroot write lock (the same flock `ostree admin` takes). */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#locked) return fn();
    const acquired = this.#native.tryLock();
    if (!acquired) throw new SysrootLockedError(this.path);
    this.#locked = true;
    try {
      await this.reload();
      return await fn();
    } finally {
      this.#locked = false;
      this.#native.unlock();
    }
  }

  resolveRev(rev: string): string | null {
    try {
      return this.#native.resolveRev(rev);
    } catch (err) {
      throw this.#wrap(err, `resolving ${rev}`);
    }
  }

  readCommit(checksum: string): CommitInfo {
    try {
      return this.#native.readCommit(checksum);
    } catch (err) {
      throw new NotFoundError(`commit ${checksum} is not in the repository ${this.repoPath}: ${(err as Error).message}`, { checksum });
    }
  }

  async pull(opts: PullOptions): Promise<void> {
    if (opts.signal?.aborted) throw new CancelledError(`pull from ${opts.remote}`);
    const onAbort = () => this.#native.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const options = this.commitGate && (await this.commitGate.handles(opts.remote)) ? await this.remoteOptions(opts.remote) : null;
      // A gated pull moves the remote's refs before the gate has seen the commits: note where
      // they were, to put them back when the gate refuses (a deployment re-checks as well).
      const named = options ? opts.refs.filter((r) => !CHECKSUM_RE.test(r)).map((r) => `${opts.remote}:${r}`) : [];
      const before = new Map(named.map((r) => [r, this.resolveRev(r)]));
      await this.#run(() =>
        this.#native.pull(opts.remote, opts.refs, opts.commitOnly ?? false, opts.depth ?? 0, opts.onProgress, !!options, !!options && !options.has('sign-verify-summary')),
      );
      if (options) {
        const pulled = opts.refs.map((r) => (CHECKSUM_RE.test(r) ? r : this.resolveRev(`${opts.remote}:${r}`))).filter((c): c is string => !!c);
        try {
          await this.commitGate!.verify(opts.remote, pulled);
        } catch (err) {
          const moved = [...before].filter(([r, c]) => this.resolveRev(r) !== c);
          if (moved.length) await this.setRefs(Object.fromEntries(moved));
          throw err;
        }
      }
    } catch (err) {
      if (err instanceof AtomhostError) throw err;
      if ((err as NativeError).cancelled || opts.signal?.aborted) throw new CancelledError(`pull from ${opts.remote}`);
      const sig = signatureFailure((err as Error).message);
      if (sig) throw new SignatureError(opts.remote, sig.commit ?? opts.refs.join(', '), sig.reason, err);
      throw new AtomhostError('AH_ERR_REMOTE', `pulling ${opts.refs.join(', ')} from remote ${opts.remote}: ${(err as Error).message}`, {
        cause: err,
        details: { remote: opts.remote, refs: opts.refs },
      });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async deploy(opts: DeployOptions): Promise<Deployment[]> {
    this.#deployments = await this.#run(() => this.#native.deploy(opts)).catch((e) => Promise.reject(this.#wrap(e, `deploying ${opts.checksum}`)));
    return this.#deployments;
  }

  /** Writes the boot order: `order` lists current indices; those left out are undeployed. */
  async writeDeployments(order: number[]): Promise<Deployment[]> {
    this.#deployments = await this.#run(() => this.#native.writeDeployments(order)).catch((e) => Promise.reject(this.#wrap(e, 'writing deployments')));
    return this.#deployments;
  }

  async cleanup(): Promise<void> {
    await this.#run(() => this.#native.cleanup()).catch((e) => Promise.reject(this.#wrap(e, 'cleaning up')));
    await this.reload();
  }

  async setPinned(index: number, pinned: boolean): Promise<void> {
    await this.#run(() => this.#native.setPinned(index, pinned)).catch((e) => Promise.reject(this.#wrap(e, pinned ? 'pinning' : 'unpinning')));
    await this.reload();
  }

  async writeOrigin(index: number, origin: string): Promise<void> {
    await this.#run(() => this.#native.writeOrigin(index, origin)).catch((e) => Promise.reject(this.#wrap(e, 'writing origin')));
    await this.reload();
  }

  async diff(fromChecksum: string, toChecksum: string): Promise<TreeDiff> {
    return this.#run(() => this.#native.diff(fromChecksum, toChecksum)).catch((e) => Promise.reject(this.#wrap(e, `diffing ${fromChecksum}..${toChecksum}`)));
  }

  /**
   * Commits the directory `dir` (no parent, no ref: see setRefs) with string metadata and
   * returns the commit's checksum. With `consume`, the directory's files are moved into the
   * repository (a bare repo adopts them, no copy) and the directory is emptied.
   */
  async commitDirectory(dir: string, opts: { subject: string; metadata?: Record<string, string>; consume?: boolean }): Promise<string> {
    return this.#run(() => this.#native.commitDir(dir, opts.subject, Object.entries(opts.metadata ?? {}), opts.consume ?? false)).catch((e) =>
      Promise.reject(this.#wrap(e, `committing ${dir}`)),
    );
  }

  /** Sets refs to checksums (null deletes the ref), all in one repository transaction. */
  async setRefs(refs: Record<string, string | null>): Promise<void> {
    const pairs = Object.entries(refs);
    if (pairs.length === 0) return;
    await this.#run(() => this.#native.setRefs(pairs)).catch((e) => Promise.reject(this.#wrap(e, `setting refs ${pairs.map(([r]) => r).join(', ')}`)));
  }

  /** `ostree checkout --union -H`: the commit's files hardlinked into `dest`, over what it holds. */
  async checkoutUnion(commit: string, dest: string): Promise<void> {
    await this.#run(() => this.#native.checkout(commit, dest)).catch((e) => Promise.reject(this.#wrap(e, `checking out ${commit} into ${dest}`)));
  }

  /** The content of one file of a commit (`ostree cat`). */
  async readCommitFile(rev: string, path: string): Promise<Buffer> {
    return this.#run(() => this.#native.readFile(rev, path)).catch((e) => Promise.reject(this.#wrap(e, `reading ${path} of ${rev}`)));
  }

  /**
   * One directory of a commit (`ostree ls -C REV PATH`), sorted by name; null when the commit
   * has no such directory. A missing commit, or a path that is not a directory, is an error.
   */
  async listCommitDir(rev: string, path: string): Promise<CommitDirEntry[] | null> {
    const entries = await this.#run(() => this.#native.listDir(rev, path)).catch((e) => Promise.reject(this.#wrap(e, `listing ${path} of ${rev}`)));
    return entries && entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Full names of the refs under `prefix` (e.g. atomhost/image). */
  listRefs(prefix: string): string[] {
    try {
      return this.#native.listRefs(prefix).sort();
    } catch (err) {
      throw this.#wrap(err, `listing refs ${prefix}`);
    }
  }

  /** Remotes of the sysroot's repo, through the ostree CLI (complete and fast for this). */
  async remotes(): Promise<string[]> {
    const stdout = await ostreeCli(['remote', 'list', `--repo=${this.repoPath}`]);
    return stdout.split('\n').filter(Boolean);
  }

  async remoteUrl(name: string): Promise<string> {
    try {
      const stdout = await ostreeCli(['remote', 'show-url', name, `--repo=${this.repoPath}`]);
      return stdout.trim();
    } catch {
      throw new NotFoundError(`remote ${name} is not configured in ${this.repoPath}`, { remote: name });
    }
  }

  /**
   * Adds a remote. Verification is the caller's choice, said explicitly: GPG with keys imported
   * into the remote's own keyring, ed25519 (`ostree remote add --sign-verify`), or none.
   */
  async addRemote(name: string, url: string, opts: AddRemoteOptions = {}): Promise<void> {
    await addRemoteToRepo(this.repoPath, name, url, opts);
  }

  async deleteRemote(name: string): Promise<void> {
    if (!(await this.remotes()).includes(name)) throw new NotFoundError(`remote ${name} is not configured in ${this.repoPath}`, { remote: name });
    await ostreeCli(['remote', 'delete', `--repo=${this.repoPath}`, name]);
  }

  /** The options of a remote's config group (url, gpg-verify, sign-verify, …); null when there is no such remote. */
  async remoteOptions(name: string): Promise<Map<string, string> | null> {
    return parseRemoteGroups(await readFile(join(this.repoPath, 'config'), 'utf8')).get(name) ?? null;
  }

  /** Every remote with how it verifies, read from the repo config (gpg-verify is on unless set false, as libostree reads it). */
  async remoteInfos(opts: { keys?: boolean } = {}): Promise<RemoteInfo[]> {
    const groups = parseRemoteGroups(await readFile(join(this.repoPath, 'config'), 'utf8'));
    const out: RemoteInfo[] = [];
    for (const [name, kv] of groups) {
      const gpgVerify = (kv.get('gpg-verify') ?? 'true') !== 'false';
      const signVerify = (kv.get('sign-verify') ?? 'false') !== 'false';
      const gpgKeys = gpgVerify && opts.keys !== false ? parseGpgKeys(await ostreeCli(['remote', 'gpg-list-keys', `--repo=${this.repoPath}`, name]).catch(() => '')) : [];
      out.push({ name, url: kv.get('url') ?? '', gpgVerify, signVerify, gpgKeys });
    }
    return out;
  }

  /** The GPG signatures on a commit as the remote's keys judge them; [] for an unsigned commit. */
  verifyCommit(checksum: string, remote: string): GpgSignature[] {
    try {
      return this.#native.verifyCommit(checksum, remote);
    } catch (err) {
      // libostree: G_IO_ERROR_NOT_FOUND "No signatures found" for an unsigned commit.
      if (/no signatures/i.test((err as Error).message)) return [];
      throw this.#wrap(err, `verifying ${checksum} with the keys of remote ${remote}`);
    }
  }

  #wrap(err: unknown, context: string): AtomhostError {
    if (err instanceof AtomhostError) return err;
    const e = err as NativeError;
    if (e?.cancelled) return new CancelledError(context);
    return new AtomhostError('AH_ERR_FAILED', `${context}: ${e?.message ?? String(err)}`, { cause: err, details: { sysroot: this.path } });
  }
}

/**
 * Adds a remote to any repo (also a scratch one). `ostree remote add --gpg-import` keeps only
 * the last key given, so the keys are imported after it, with `ostree remote gpg-import`.
 */
export async function addRemoteToRepo(repoPath: string, name: string, url: string, opts: AddRemoteOptions = {}): Promise<void> {
  const args = ['remote', 'add', `--repo=${repoPath}`];
  if (opts.ifNotExists) args.push('--if-not-exists');
  if (!opts.gpgVerify) args.push('--no-gpg-verify');
  for (const k of opts.signVerify ?? []) args.push(`--sign-verify=${k}`);
  for (const [k, v] of opts.set ?? []) args.push(`--set=${k}=${v}`);
  await ostreeCli([...args, name, url]);
  // One call per file: given several `-k`, ostree 2022.7 imports only one of them too.
  for (const k of opts.gpgImport ?? []) await ostreeCli(['remote', 'gpg-import', `--repo=${repoPath}`, name, '-k', k]);
}

/** Runs the ostree CLI and returns its stdout; a non-zero exit throws with its stderr. */
function ostreeCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ostree', args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(String(stdout));
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code !== 'number') return reject(err); // could not spawn at all
      reject(new Error(`ostree ${args.join(' ')}: ${String(stderr).trim() || `exit ${code}`}`));
    });
  });
}

/** `[remote "NAME"]` groups of a repo config: name → key → value. */
function parseRemoteGroups(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const g = /^\[(.*)\]$/.exec(line);
    if (g) {
      const r = /^remote "(.*)"$/.exec(g[1]);
      cur = r ? new Map() : null;
      if (r) out.set(r[1], cur!);
      continue;
    }
    const eq = line.indexOf('=');
    if (cur && eq > 0) cur.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

/** `ostree remote gpg-list-keys` output: its Key: and first UID: lines. */
function parseGpgKeys(text: string): { fingerprint: string; uid: string | null }[] {
  const keys: { fingerprint: string; uid: string | null }[] = [];
  for (const line of text.split('\n')) {
    const k = /^Key: (\S+)/.exec(line);
    if (k) keys.push({ fingerprint: k[1], uid: null });
    const u = /^\s+UID: (.*)$/.exec(line);
    if (u && keys.length && keys[keys.length - 1].uid === null) keys[keys.length - 1].uid = u[1];
  }
  return keys;
}

/**
 * Recognizes libostree's refusals of a commit's signature in a pull error (its texts as of
 * 2022.7: GPG "No signatures found" / "…signature…key…not found" / "…expired…", and the
 * sign-verify "Can't verify…"), and which commit it names.
 */
function signatureFailure(message: string): { commit: string | null; reason: string } | null {
  if (!/signature|gpg|public key|Can't verify/i.test(message)) return null;
  const commit = /\b([0-9a-f]{64})\b/.exec(message)?.[1] ?? null;
  let reason = message.replace(/^.*?:\s*(?=[A-Z])/, '').replace(/\s*\n\s*/g, '; ');
  if (/No signatures found/i.test(message)) reason = 'the commit is not signed';
  else if (/public key not found|key.*not found|No public key/i.test(message)) reason = `it is signed by a key the remote does not trust (${reason})`;
  return { commit, reason };
}
