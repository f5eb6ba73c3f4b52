// The revision index: one compact file beside the records (<sysroot>/ostree/atomhost/
// revisions.index) with a line per record, oldest first: "<created> <id> <state>". It lets
// `revisions` page newest first, and retention and boot find candidates, without parsing
// every record. The records stay the source of truth: an index that does not parse, or
// whose set of ids differs from the records directory's, is rebuilt from them.
import { readFile } from 'node:fs/promises';
import { atomicWriteFile } from './atomic-write.js';
import type { RevisionState } from './revision.js';

export interface IndexEntry {
  created: string;
  id: string;
  state: RevisionState;
}

const HEADER = 'atomhost-revision-index 1';
const STATES = new Set<string>(['deployed', 'staged', 'booted', 'healthy', 'failed', 'rolled-back']);
export function isRevisionState(s: unknown): s is RevisionState {
  return typeof s === 'string' && STATES.has(s);
}
// Lines are "<created, 24 characters as toISOString writes it> <id, 64> <state>".
const CREATED_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Oldest first; ties (same millisecond) broken by id so the order is stable. */
export function compareEntries(a: IndexEntry, b: IndexEntry): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The entries of an index file, or null when it is missing or not exactly what we write. */
export async function readIndex(file: string): Promise<IndexEntry[] | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  return parseIndex(text);
}

export function parseIndex(text: string): IndexEntry[] | null {
  const lines = text.split('\n');
  // A torn or foreign file is never trusted: header, every line, trailing newline, order.
  if (lines[0] !== HEADER || lines[lines.length - 1] !== '') return null;
  // Structure only, kept cheap (this runs on every listing of up to 10,000 lines): that
  // each id names a record file is checked against the directory by the store, and ids
  // strictly increasing by (created, id) rules out duplicates.
  const out: IndexEntry[] = [];
  let prev = '';
  for (let i = 1; i < lines.length - 1; i++) {
    const l = lines[i];
    if (l.length < 91 || l.charCodeAt(24) !== 32 || l.charCodeAt(89) !== 32) return null;
    const key = l.slice(0, 89);
    const state = l.slice(90);
    if (key <= prev || !STATES.has(state)) return null;
    prev = key;
    out.push({ created: l.slice(0, 24), id: l.slice(25, 89), state: state as RevisionState });
  }
  // The dates are checked where they matter for order: the first and the last line.
  if (out.length && !(CREATED_RE.test(out[0].created) && CREATED_RE.test(out[out.length - 1].created))) return null;
  return out;
}

export function serializeIndex(entries: IndexEntry[]): string {
  return `${[HEADER, ...entries.map((e) => `${e.created} ${e.id} ${e.state}`)].join('\n')}\n`;
}

export async function writeIndex(file: string, entries: IndexEntry[]): Promise<void> {
  await atomicWriteFile(file, serializeIndex([...entries].sort(compareEntries)), { mode: 0o600 });
}
