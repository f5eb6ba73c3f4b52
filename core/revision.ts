// Host revisions: one coherent version of the whole host stack (OS commit and kernel
// arguments, system containers by digest, the unit files atomhost wrote). Records are
// content-addressed, stored as YAML under <sysroot>/ostree/atomhost/revisions/ (outside
// every deployment, so they survive cleanup), and written atomically.
import { createHash } from 'node:crypto';
import { access, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { atomicWriteFile } from './atomic-write.js';
import { AtomhostError, NotFoundError } from './errors.js';
import { getKey, parseKeyFile, serializeKeyFile, setKey } from './keyfile.js';

export type RevisionState = 'deployed' | 'staged' | 'booted' | 'healthy' | 'failed' | 'rolled-back';

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
}

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

export function shortId(id: string): string {
  return id.slice(0, 12);
}

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

  constructor(sysrootPath: string) {
    this.dir = join(sysrootPath, 'ostree', 'atomhost', 'revisions');
  }

  #file(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new NotFoundError(`not a revision id: ${id}`, { revision: id });
    return join(this.dir, `${id}.yaml`);
  }

  async save(rev: Revision): Promise<void> {
    const expected = revisionId(rev);
    if (expected !== rev.id) throw new AtomhostError('AH_ERR_CORRUPT', `revision ${shortId(rev.id)} does not match its content (${shortId(expected)})`);
    await atomicWriteFile(this.#file(rev.id), YAML.stringify(rev), { mode: 0o600 });
  }

  async get(id: string): Promise<Revision> {
    const file = this.#file(id);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new NotFoundError(`revision ${shortId(id)} has no record (${file})`, { revision: id });
    }
    const rev = YAML.parse(text) as Revision;
    if (revisionId(rev) !== id) throw new AtomhostError('AH_ERR_CORRUPT', `revision record ${file} does not match its id`, { details: { file } });
    return rev;
  }

  /** Whether a record exists (cheaper than reading it). */
  async has(id: string): Promise<boolean> {
    try {
      await access(this.#file(id));
      return true;
    } catch {
      return false;
    }
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
    if (!/^[0-9a-f]{6,63}$/.test(idOrPrefix)) throw new NotFoundError(`not a revision id: ${idOrPrefix}`, { revision: idOrPrefix });
    const matches = (await this.ids()).filter((id) => id.startsWith(idOrPrefix));
    if (matches.length === 0) throw new NotFoundError(`no revision ${idOrPrefix}`, { revision: idOrPrefix });
    if (matches.length > 1) throw new NotFoundError(`revision prefix ${idOrPrefix} is ambiguous`, { revision: idOrPrefix });
    return this.get(matches[0]);
  }

  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((f) => /^[0-9a-f]{64}\.yaml$/.test(f)).map((f) => f.slice(0, 64));
    } catch {
      return [];
    }
  }

  async list(): Promise<Revision[]> {
    const revs = await Promise.all((await this.ids()).map((id) => this.get(id)));
    return revs.sort((a, b) => b.created.localeCompare(a.created));
  }

  /** Removes a record (only for one that no deployment names: recovery of a crashed deploy). */
  async remove(id: string): Promise<void> {
    await unlink(this.#file(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async setState(id: string, state: RevisionState, reason?: string): Promise<Revision> {
    const rev = await this.get(id);
    rev.state = state;
    if (reason !== undefined) rev.reason = reason;
    else delete rev.reason;
    await this.save(rev);
    return rev;
  }
}
