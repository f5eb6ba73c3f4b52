// Host revisions: one coherent version of the whole host stack (OS commit and kernel
// arguments, system containers by digest, the unit files atomhost wrote). Records are
// content-addressed, stored under <sysroot>/ostree/atomhost/revisions/<id>.yaml (outside
// every deployment, so they survive cleanup), and written atomically.
//
// Records are written as JSON, which is YAML 1.2 (a JSON document is a YAML one): reads
// take JSON.parse, a few microseconds and no YAML module to load, while records written
// as block YAML by earlier versions still load (through `yaml`, imported on first need),
// and an earlier version booted by a rollback still reads the new ones with its YAML parser.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile, type WriteSync } from './atomic-write.js';
import { AtomhostError, InvalidArgumentError, NotFoundError } from './errors.js';
import { IdFingerprint, dirStamp, shortId, isRecordName, isRevisionState, parseIndex, readIndex, serializeIndex, type IndexEntry, type LoadedIndex, type RevisionState } from './revision-index.js';
import { getKey, parseKeyFile, serializeKeyFile, setKey } from './keyfile.js';

export type { RevisionState } from './revision-index.js';

export interface OsSpec {
  osname: string;
  /** Remote name, or null for a local ref. */
  remote: string | null;
  /** remote:ref as written in the deployment's origin. */
  refspec: string;
  checksum: string;
  version: string | null;
  kargs: string[];
}

export interface ContainerSpec {
  name: string;
  /** Image reference as the user gave it (registry/name:tag). */
  image: string;
  /** Manifest digest (sha256:…) that this revision runs. */
  digest: string;
  /** Template values given with --set, merged over the image's defaults. */
  values: Record<string, string>;
  /** Directory the container runs from. */
  checkout: string;
  /** Stack role (network, runtime, engine, kubelet) when the container belongs to the stack. */
  role?: string;
  /** How the health gate knows the container works, beyond its unit being active. */
  probe?: HealthProbe;
  /**
   * Files and directories the image's /exports/hostfs put on the host (Project Atomic
   * system containers), by host path: what this container owns in this revision, so a
   * rollback restores that set and an uninstall removes it (containers/hostfs.ts).
   */
  hostFiles?: Record<string, HostFileSpec>;
}

/** A host file a container owns: its content (in the unit store) and mode, or a directory. */
export type HostFileSpec = { type: 'file'; sha256: string; mode: number } | { type: 'dir'; mode: number };

/** An HTTP URL that must answer 2xx, or a command that must exit 0. */
export type HealthProbe = { http: string } | { command: string[] };

export interface UnitSpec {
  /** sha256 of the unit file's content. */
  sha256: string;
  /** Where the unit file is installed. */
  path: string;
}

/**
 * A unit the OS ships (containerd.service, etcd.service) that the stack names by role:
 * atomhost orders, starts, supervises and gates it like a system container's unit.
 */
export interface HostUnitSpec {
  role: string;
  probe?: HealthProbe;
}

/** What a revision is: the part covered by its id. */
export interface RevisionContent {
  os: OsSpec;
  containers: Record<string, ContainerSpec>;
  units: Record<string, UnitSpec>;
  /** Host units of the stack, by unit name (absent in revisions that name none). */
  hostUnits?: Record<string, HostUnitSpec>;
  parent: string | null;
}

export interface Revision extends RevisionContent {
  id: string;
  created: string;
  state: RevisionState;
  /** Why the state was last changed (for failed and rolled-back). */
  reason?: string;
}

export const ORIGIN_SECTION = 'atomhost';

/** One page of history, newest first; `next` is the id to pass as `before` for the page after. */
export interface RevisionPage {
  revisions: Revision[];
  /** Number of records in the store. */
  total: number;
  next: string | null;
}

export interface RevisionPageQuery {
  /** At most this many (all when absent or 0). */
  limit?: number;
  /** Only revisions older than this one (a full id or a unique prefix of at least 6). */
  before?: string;
}

/** Retention: how many of the newest records are kept whatever else holds (ATOMHOST_KEEP_REVISIONS). */
export const DEFAULT_KEEP_REVISIONS = 50;

export function keepRevisionsSetting(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ATOMHOST_KEEP_REVISIONS;
  if (raw === undefined || raw === '') return DEFAULT_KEEP_REVISIONS;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) {
    throw new InvalidArgumentError(`ATOMHOST_KEEP_REVISIONS=${raw}: expected a whole number of revisions to keep, at least 1`);
  }
  return Number(raw);
}

/** Canonical JSON (sorted keys) so that the same content always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function revisionId(content: RevisionContent): string {
  const { os, containers, units, hostUnits, parent } = content;
  // An empty hostUnits hashes as none: revisions made before host units keep their ids.
  const host = hostUnits && Object.keys(hostUnits).length ? hostUnits : undefined;
  return createHash('sha256').update(canonical({ os, containers, units, hostUnits: host, parent })).digest('hex');
}

// In revision-index.ts, which loads no YAML: the CLI's renderers need it and nothing else.
export { shortId };

export function newRevision(content: RevisionContent, state: RevisionState = 'deployed'): Revision {
  return { id: revisionId(content), ...structuredClone(content), created: new Date().toISOString(), state };
}

/** Names the revision in an origin keyfile, keeping everything else in it. */
export function originWithRevision(origin: string, id: string): string {
  return serializeKeyFile(setKey(parseKeyFile(origin), ORIGIN_SECTION, 'revision', id));
}

export function originWithRefspec(origin: string, refspec: string): string {
  return serializeKeyFile(setKey(parseKeyFile(origin), 'origin', 'refspec', refspec));
}

/** The stack manifest source the deployment follows (`[atomhost] stack-source=`), if any. */
export function stackSourceFromOrigin(origin: string | null): string | null {
  if (!origin) return null;
  return getKey(parseKeyFile(origin), ORIGIN_SECTION, 'stack-source') ?? null;
}

export function originWithStackSource(origin: string, source: string | null): string {
  const kf = parseKeyFile(origin);
  if (source) setKey(kf, ORIGIN_SECTION, 'stack-source', source);
  else kf.get(ORIGIN_SECTION)?.delete('stack-source');
  return serializeKeyFile(kf);
}

export function revisionIdFromOrigin(origin: string | null): string | null {
  if (!origin) return null;
  return getKey(parseKeyFile(origin), ORIGIN_SECTION, 'revision') ?? null;
}

export function refspecFromOrigin(origin: string | null): string | null {
  if (!origin) return null;
  return getKey(parseKeyFile(origin), 'origin', 'refspec') ?? null;
}

export function splitRefspec(refspec: string): { remote: string | null; ref: string } {
  const i = refspec.indexOf(':');
  return i < 0 ? { remote: null, ref: refspec } : { remote: refspec.slice(0, i), ref: refspec.slice(i + 1) };
}

export class RevisionStore {
  readonly dir: string;
  /** The index beside the records directory (outside it, so writing it never looks like a record change). */
  readonly indexFile: string;
  /** Records read and parsed by this store (what the index saves; tests count it). */
  recordReads = 0;

  constructor(sysrootPath: string) {
    this.dir = join(sysrootPath, 'ostree', 'atomhost', 'revisions');
    this.indexFile = join(sysrootPath, 'ostree', 'atomhost', 'revisions.index');
  }

  #file(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new NotFoundError(`not a revision id: ${id}`, { revision: id });
    return join(this.dir, `${id}.yaml`);
  }

  /**
   * Writes a record, then its index line. `sync` (default 'full') is the record's
   * durability (core/atomic-write.ts): a transaction whose next step is a libostree
   * deployment write passes 'data', since libostree syncs the filesystem before the boot
   * entries that name the record exist.
   */
  async save(rev: Revision, opts: { sync?: WriteSync } = {}): Promise<void> {
    const expected = revisionId(rev);
    if (expected !== rev.id) throw new AtomhostError('AH_ERR_CORRUPT', `revision ${shortId(rev.id)} does not match its content (${shortId(expected)})`);
    await this.#write(rev, opts.sync ?? 'full');
  }

  /** A record already checked against its id. */
  async #write(rev: Revision, sync: WriteSync): Promise<void> {
    await atomicWriteFile(this.#file(rev.id), serializeRecord(rev), { mode: 0o600, sync });
    // The record first: a crash before the index is written leaves an index the next read rebuilds.
    await this.#indexWith(entryOf(rev));
  }

  async get(id: string): Promise<Revision> {
    const file = this.#file(id);
    let text: string;
    try {
      // A small local file: read synchronously (microseconds; see core/atomic-write.ts).
      text = readFileSync(file, 'utf8');
    } catch {
      throw new NotFoundError(`revision ${shortId(id)} has no record (${file})`, { revision: id });
    }
    this.recordReads++;
    let rev: Revision;
    try {
      rev = await parseRecord(text);
    } catch (err) {
      throw new AtomhostError('AH_ERR_CORRUPT', `revision record ${file} cannot be read: ${(err as Error).message.split('\n')[0]}`, { details: { file } });
    }
    if (!rev || typeof rev !== 'object' || revisionId(rev) !== id) throw new AtomhostError('AH_ERR_CORRUPT', `revision record ${file} does not match its id`, { details: { file } });
    return rev;
  }

  /** Whether a record exists (cheaper than reading it). */
  async has(id: string): Promise<boolean> {
    return existsSync(this.#file(id));
  }

  async find(id: string | null): Promise<Revision | null> {
    if (!id) return null;
    try {
      return await this.get(id);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /** Resolves a full id or a unique prefix of at least 6 characters. */
  async resolve(idOrPrefix: string): Promise<Revision> {
    if (/^[0-9a-f]{64}$/.test(idOrPrefix)) return this.get(idOrPrefix);
    return this.get(matchId(await this.ids(), idOrPrefix));
  }

  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((f) => /^[0-9a-f]{64}\.yaml$/.test(f)).map((f) => f.slice(0, 64));
    } catch {
      return [];
    }
  }

  /**
   * The index, checked against the records directory: one that is missing or whose header
   * does not seal its body is rebuilt from every record; one whose id fingerprint differs
   * from the directory's (a record written or removed behind its back) reads only the
   * records it lacks and drops the ones that are gone. A rebuilt index is written back
   * when this process may (a reader without write access just uses it).
   */
  async #index(rebuild = false): Promise<LoadedIndex> {
    // The directory is stat'ed before it is listed: a change made after this moment makes its stamp differ.
    const [loaded, st] = await Promise.all([readIndex(this.indexFile), this.#stat()]);
    // The directory has not changed since it was last seen to match: no need to list it.
    if (loaded && !rebuild && loaded.dir !== '-' && st && loaded.dir === `${st.ino}:${st.mtimeNs}`) return loaded;
    if (loaded && !rebuild) {
      const fp = new IdFingerprint();
      for (const n of await readdir(this.dir).catch(() => [] as string[])) if (isRecordName(n)) fp.add(n);
      if (fp.count === loaded.count && fp.toString() === loaded.fingerprint) {
        const stamp = dirStamp(st);
        if (stamp !== loaded.dir) await atomicWriteFile(this.indexFile, loaded.serialize(stamp), { mode: 0o600, sync: 'none' }).catch(() => {});
        return loaded;
      }
    }
    const ids = await this.ids();
    const onDisk = new Set(ids);
    const known = new Map(((!rebuild && loaded?.all()) || []).filter((e) => onDisk.has(e.id)).map((e) => [e.id, e]));
    const missing = ids.filter((id) => !known.has(id));
    for (const rev of await this.#findAll(missing)) if (rev) known.set(rev.id, entryOf(rev));
    const text = serializeIndex([...known.values()], dirStamp(st));
    await atomicWriteFile(this.indexFile, text, { mode: 0o600, sync: 'none' }).catch(() => {});
    return parseIndex(Buffer.from(text, 'latin1'))!;
  }

  /** Every index entry, oldest first. */
  async entries(): Promise<IndexEntry[]> {
    return (await this.#index()).all() ?? (await this.#index(true)).all()!;
  }

  /** Every record, newest first (reads them all: for `--all` and tests; paged callers use page()). */
  async list(): Promise<Revision[]> {
    return (await this.page({})).revisions;
  }

  /** A page of history, newest first, reading only the index lines and the records on the page. */
  async page(q: RevisionPageQuery): Promise<RevisionPage> {
    let index = await this.#index();
    let skip = 0;
    if (q.before) {
      const id = /^[0-9a-f]{64}$/.test(q.before) ? q.before : matchId(/^[0-9a-f]{6,63}$/.test(q.before) ? index.idsWithPrefix(q.before) : [], q.before);
      skip = index.positionFromNewest(id) + 1;
      if (skip === 0) throw new NotFoundError(`no revision ${q.before}`, { revision: q.before });
    }
    const n = Math.max(0, Math.min(index.count - skip, q.limit || index.count));
    let entries = index.newest(n, skip);
    if (!entries) {
      index = await this.#index(true);
      entries = index.newest(n, skip)!;
    }
    const revisions = (await this.#findAll(entries.map((e) => e.id))).filter((r): r is Revision => !!r);
    const more = skip + n < index.count;
    return { revisions, total: index.count, next: more && revisions.length ? revisions[revisions.length - 1].id : null };
  }

  /** Removes a record (only for one that no deployment names: recovery of a crashed deploy). */
  async remove(id: string): Promise<void> {
    await this.#unlink(id);
    await this.#updateIndex((entries) => entries.filter((e) => e.id !== id));
  }

  /** Changes a record's state (`sync` as for save: 'full' unless a later sync covers it). */
  async setState(id: string, state: RevisionState, reason?: string, opts: { sync?: WriteSync } = {}): Promise<Revision> {
    const rev = await this.get(id);
    rev.state = state;
    if (reason !== undefined) rev.reason = reason;
    else delete rev.reason;
    await this.#write(rev, opts.sync ?? 'full');
    return rev;
  }

  /**
   * Records the index says are in `state` (a hint: each is read to confirm, since a crash
   * between a record and its index write can leave the index's state behind).
   */
  async inState(state: RevisionState): Promise<Revision[]> {
    const hinted = (await this.entries()).filter((e) => e.state === state);
    return (await this.#findAll(hinted.map((e) => e.id))).filter((r): r is Revision => r?.state === state);
  }

  /**
   * Retention: removes the records that nothing needs, keeping those `named` (by a
   * deployment: the booted, default, staged and rollback entries all are), the newest
   * `keep`, and every `failed` one (upgrades refuse a failed content hash by looking its
   * record up, so forgetting it would let a bad release be picked again). Returns the ids removed.
   */
  async prune(opts: { named: Set<string>; keep: number }): Promise<string[]> {
    const entries = await this.entries();
    const cut = Math.max(0, entries.length - opts.keep);
    const removed: string[] = [];
    for (const e of entries.slice(0, cut)) {
      if (opts.named.has(e.id) || e.state === 'failed') continue;
      // The index's state is a hint: a record that is failed after all is kept.
      const rev = await this.find(e.id);
      if (rev?.state === 'failed') continue;
      await this.#unlink(e.id);
      removed.push(e.id);
    }
    if (removed.length) {
      const gone = new Set(removed);
      await this.#updateIndex((all) => all.filter((e) => !gone.has(e.id)));
    }
    return removed;
  }

  /** Reads records a few at a time (thousands at once would run out of file descriptors). */
  async #findAll(ids: string[]): Promise<(Revision | null)[]> {
    const out: (Revision | null)[] = [];
    for (let i = 0; i < ids.length; i += 32) out.push(...(await Promise.all(ids.slice(i, i + 32).map((id) => this.find(id)))));
    return out;
  }

  async #unlink(id: string): Promise<void> {
    await unlink(this.#file(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  // The index is never fsynced: it is sealed by its hash and checked against the records
  // directory on read, so one that a power loss left old, empty or torn is rebuilt from the
  // records, which stay the source of truth (a state it has not caught up with is a hint
  // its readers confirm in the record).
  async #updateIndex(change: (entries: IndexEntry[]) => IndexEntry[]): Promise<void> {
    // Just after a change the directory cannot be stamped ('-'): the next listing checks it.
    await atomicWriteFile(this.indexFile, serializeIndex(change(await this.entries())), { mode: 0o600, sync: 'none' });
  }

  /** Puts one record's line in the index: edited in place when it can be (a state change, a newest record), else rebuilt. */
  async #indexWith(e: IndexEntry): Promise<void> {
    const text = (await readIndex(this.indexFile))?.withEntry(e);
    if (text) await atomicWriteFile(this.indexFile, text, { mode: 0o600, sync: 'none' });
    else await this.#updateIndex((entries) => [...entries.filter((x) => x.id !== e.id), e]);
  }

  async #stat(): Promise<{ ino: bigint; mtimeNs: bigint } | null> {
    return stat(this.dir, { bigint: true }).catch(() => null);
  }
}

/** A record as written: JSON (and so YAML 1.2), two-space indented like the YAML it replaces. */
export function serializeRecord(rev: Revision): string {
  return `${JSON.stringify(rev, null, 2)}\n`;
}

/** A record's text: JSON as written now, or block YAML as written before (loads `yaml` the first time). */
export async function parseRecord(text: string): Promise<Revision> {
  if (text.charCodeAt(0) === 123 /* { */) {
    try {
      return JSON.parse(text) as Revision;
    } catch {
      // A flow-style YAML mapping written by hand, say: YAML reads it (or says why not).
    }
  }
  const { parseYaml } = await import('./yaml-text.js');
  return parseYaml(text) as Revision;
}

function entryOf(rev: Revision): IndexEntry {
  // Records written by hand or by old versions may carry any date text: the index keeps a valid one.
  const t = Date.parse(rev.created);
  const ok = t >= 0 && t < Date.UTC(10000, 0, 1);
  return { id: rev.id, created: new Date(ok ? t : 0).toISOString(), state: isRevisionState(rev.state) ? rev.state : 'deployed' };
}

/** A full id or a unique prefix of at least 6 characters, among ids. */
function matchId(ids: string[], idOrPrefix: string): string {
  if (!/^[0-9a-f]{6,64}$/.test(idOrPrefix)) throw new NotFoundError(`not a revision id: ${idOrPrefix}`, { revision: idOrPrefix });
  const matches = ids.filter((id) => id.startsWith(idOrPrefix));
  if (matches.length === 0) throw new NotFoundError(`no revision ${idOrPrefix}`, { revision: idOrPrefix });
  if (matches.length > 1) throw new NotFoundError(`revision prefix ${idOrPrefix} is ambiguous`, { revision: idOrPrefix });
  return matches[0];
}
