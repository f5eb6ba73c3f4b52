// The revision index: one compact file beside the records (<sysroot>/ostree/atomhost/
// revisions.index) with a line per record, oldest first: "<created> <id> <state>". It lets
// `revisions` page newest first, and retention and boot find candidates, without parsing
// every record. The records stay the source of truth: an index that does not check out,
// or whose set of ids differs from the records directory's, is rebuilt from them.
//
// The header seals the body: its line count, the SHA-256 of the body (so a torn or edited
// file is never trusted, without parsing 10,000 lines on every listing) and a fingerprint
// of the set of ids (so the records directory is compared with the index by one cheap
// pass over its names, not by building sets). A page parses only its own lines.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A revision id as people read it: its first 12 hex digits. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

export interface IndexEntry {
  created: string;
  id: string;
  state: RevisionState;
}

const MAGIC = 'atomhost-revision-index 2';
const HEADER_RE = /^atomhost-revision-index 2 count=(\d{1,9}) ids=([0-9a-f]{16}) dir=(-|\d{1,30}:\d{1,30}) sha256=([0-9a-f]{64})$/;
/** What the host did with a revision (docs/revisions.md). Defined here, with the index that stores it. */
export const REVISION_STATES = ['deployed', 'staged', 'booted', 'healthy', 'failed', 'rolled-back'] as const;
export type RevisionState = (typeof REVISION_STATES)[number];
const STATES = new Set<string>(REVISION_STATES);
const LINE_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([0-9a-f]{64}) ([a-z-]+)$/;

export function isRevisionState(s: unknown): s is RevisionState {
  return typeof s === 'string' && STATES.has(s);
}

/** Oldest first; ties (same millisecond) broken by id so the order is stable. */
export function compareEntries(a: IndexEntry, b: IndexEntry): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Whether a records-directory name looks like a record (cheap: a bad one only makes the fingerprint differ). */
export function isRecordName(name: string): boolean {
  return name.length === 69 && name.charCodeAt(0) !== 46 && name.endsWith('.yaml');
}

/** Order-free fingerprint of a set of ids (they are SHA-256 digests: their bits are uniform). */
export class IdFingerprint {
  count = 0;
  #x = 0;
  #s = 0;
  add(id: string): void {
    this.count++;
    this.#x = (this.#x ^ parseInt(id.slice(0, 8), 16)) >>> 0;
    this.#s = (this.#s + parseInt(id.slice(8, 16), 16)) >>> 0;
  }
  toString(): string {
    return this.#x.toString(16).padStart(8, '0') + this.#s.toString(16).padStart(8, '0');
  }
  /** The fingerprint of `count` ids as toString wrote it, to add more ids to. */
  static parse(text: string, count: number): IdFingerprint {
    const fp = new IdFingerprint();
    fp.count = count;
    fp.#x = parseInt(text.slice(0, 8), 16) >>> 0;
    fp.#s = parseInt(text.slice(8, 16), 16) >>> 0;
    return fp;
  }
}

/** A checked index file: its header and body, lines parsed only when asked for. */
export class LoadedIndex {
  readonly count: number;
  readonly fingerprint: string;
  /** The records directory's stamp when it was last seen to match (see dirStamp), or '-'. */
  readonly dir: string;
  readonly #body: string;

  constructor(count: number, fingerprint: string, dir: string, body: string) {
    this.count = count;
    this.fingerprint = fingerprint;
    this.dir = dir;
    this.#body = body;
  }

  /** The same index under a new directory stamp. */
  serialize(dir: string): string {
    return header(this.count, this.fingerprint, dir, this.#body) + this.#body;
  }

  /**
   * The index text with `e` in it, edited in place of parsing and sorting every line: the
   * state of the line with the same id and time replaced (a state change), or a line
   * appended when it sorts after the newest (a new record). Null when neither applies
   * (the caller rebuilds). Not checked against the records directory: the result is
   * unstamped ('-'), so the next listing compares the two by their fingerprints anyway.
   */
  withEntry(e: IndexEntry): string | null {
    const line = `${e.created} ${e.id} ${e.state}\n`;
    const at = this.#body.indexOf(` ${e.id} `);
    if (at >= 0) {
      const start = this.#body.lastIndexOf('\n', at) + 1;
      const end = this.#body.indexOf('\n', at) + 1;
      const old = parseLine(this.#body.slice(start, end - 1));
      if (!old || old.created !== e.created) return null;
      const body = this.#body.slice(0, start) + line + this.#body.slice(end);
      return header(this.count, this.fingerprint, '-', body) + body;
    }
    const last = this.newest(1);
    if (!last || (last.length && compareEntries(last[0], e) >= 0)) return null;
    const fp = IdFingerprint.parse(this.fingerprint, this.count);
    fp.add(e.id);
    const body = this.#body + line;
    return header(fp.count, fp.toString(), '-', body) + body;
  }

  /** n entries, newest first, after skipping the `skip` newest; null when a line is not what we write. */
  newest(n: number, skip = 0): IndexEntry[] | null {
    // Walk back from the end of the body over skip + n lines.
    const out: IndexEntry[] = [];
    let end = this.#body.length - 1; // the final newline
    for (let k = 0; k < skip + n && end > 0; k++) {
      const start = this.#body.lastIndexOf('\n', end - 1) + 1;
      if (k >= skip) {
        const e = parseLine(this.#body.slice(start, end));
        if (!e) return null;
        out.push(e);
      }
      end = start - 1;
    }
    return out;
  }

  /** The position (counted from the newest, 0-based) of the line with this id, or -1. */
  positionFromNewest(id: string): number {
    const at = this.#body.indexOf(` ${id} `);
    if (at < 0) return -1;
    let after = 0;
    for (let i = this.#body.indexOf('\n', at); i >= 0 && i < this.#body.length - 1; i = this.#body.indexOf('\n', i + 1)) after++;
    return after;
  }

  /** Every entry, oldest first, or null when a line is not what we write. */
  all(): IndexEntry[] | null {
    return this.newest(this.count)?.reverse() ?? null;
  }

  /** Ids starting with a prefix (for --before PREFIX), at most two (enough to say ambiguous). */
  idsWithPrefix(prefix: string): string[] {
    const out: string[] = [];
    for (let at = this.#body.indexOf(` ${prefix}`); at >= 0 && out.length < 2; at = this.#body.indexOf(` ${prefix}`, at + 1)) {
      const id = this.#body.slice(at + 1, at + 65);
      if (this.#body.charCodeAt(at - 1) === 90 /* Z */ && !out.includes(id)) out.push(id);
    }
    return out;
  }
}

function parseLine(line: string): IndexEntry | null {
  const m = LINE_RE.exec(line);
  if (!m || !STATES.has(m[3])) return null;
  return { created: m[1], id: m[2], state: m[3] as RevisionState };
}

/** The index, or null when it is missing or its header does not seal its body. */
export async function readIndex(file: string): Promise<LoadedIndex | null> {
  let data: Buffer;
  try {
    // Synchronous: a page-cache read, without a thread-pool round trip (1 MB for 10,000 records).
    data = readFileSync(file);
  } catch {
    return null;
  }
  return parseIndex(data);
}

/** Works on bytes: the hash is taken before any decoding, and the body is ASCII when it checks out. */
export function parseIndex(data: Buffer): LoadedIndex | null {
  const nl = data.indexOf(10);
  if (nl < 0) return null;
  const m = HEADER_RE.exec(data.toString('latin1', 0, nl));
  if (!m) return null;
  const bytes = data.subarray(nl + 1);
  if (createHash('sha256').update(bytes).digest('hex') !== m[4]) return null;
  const count = Number(m[1]);
  if (count === 0 ? bytes.length !== 0 : bytes[bytes.length - 1] !== 10) return null;
  return new LoadedIndex(count, m[2], m[3], bytes.toString('latin1'));
}

function header(count: number, fingerprint: string, dir: string, body: string): string {
  return `${MAGIC} count=${count} ids=${fingerprint} dir=${dir} sha256=${createHash('sha256').update(body, 'latin1').digest('hex')}\n`;
}

/**
 * A stamp of the records directory (inode and modification time) that proves it unchanged
 * since, or '-' when it cannot: file times advance in clock ticks, so a change made in the
 * same tick as the one stamped would keep the time. A stamp is only taken once the last
 * change is older than STAMP_AGE_NS; any later change then has a later time.
 */
const STAMP_AGE_NS = 100_000_000n;
export function dirStamp(st: { ino: bigint; mtimeNs: bigint } | null, nowNs: bigint = BigInt(Date.now()) * 1_000_000n): string {
  if (!st || nowNs - st.mtimeNs < STAMP_AGE_NS) return '-';
  return `${st.ino}:${st.mtimeNs}`;
}

export function serializeIndex(entries: IndexEntry[], dir = '-'): string {
  const sorted = [...entries].sort(compareEntries);
  const fp = new IdFingerprint();
  for (const e of sorted) fp.add(e.id);
  const body = sorted.map((e) => `${e.created} ${e.id} ${e.state}\n`).join('');
  return header(sorted.length, fp.toString(), dir, body) + body;
}
