// The open-transaction journal: a small record written (atomically) before a transaction
// changes anything and removed when it has finished, so that the next start can finish
// or undo what a crash interrupted (LocalHost.recover).
//
// Durability (power loss; a killed process loses nothing written): `begin` says how much
// the transaction needs (see LocalHost for each kind). `end` only unlinks: a removal lost
// to a power loss brings back a finished transaction's journal, which recovery recognizes
// as finished (a deploy whose revision a deployment names; a rollback whose `from` record
// is no longer in `fromState`), and whatever could make it look unfinished later (a
// deployment removed, a boot order written) goes through libostree, which syncs the
// filesystem, and so the removal, first.
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFile, type WriteSync } from './atomic-write.js';
import type { RevisionState } from './revision.js';

export type OpenTransaction =
  | { kind: 'deploy'; title: string; revision: string; started?: string }
  | {
      kind: 'rollback';
      title?: string;
      from: string | null;
      to: string | null;
      /** The state of `from`'s record when the rollback began (absent in journals of older versions). */
      fromState?: RevisionState;
      started?: string;
    };

export class TransactionJournal {
  readonly file: string;

  constructor(sysrootPath: string) {
    this.file = join(sysrootPath, 'ostree', 'atomhost', 'transaction.json');
  }

  async begin(tx: OpenTransaction, sync: WriteSync = 'full'): Promise<void> {
    await atomicWriteFile(this.file, JSON.stringify({ ...tx, started: new Date().toISOString() }), { sync });
  }

  /** The open transaction, or null (also for a file a power loss left empty or torn: see `begin`'s callers). */
  async read(): Promise<OpenTransaction | null> {
    try {
      // Every transaction starts by looking: synchronous, as the writes (core/atomic-write.ts).
      return JSON.parse(readFileSync(this.file, 'utf8')) as OpenTransaction;
    } catch {
      return null;
    }
  }

  async end(): Promise<void> {
    try {
      unlinkSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
