// The open-transaction journal: a small record written (atomically) before a transaction
// changes anything and removed when it has finished, so that the next start can finish
// or undo what a crash interrupted (LocalHost.recover).
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile, fsyncDir } from './atomic-write.js';

export type OpenTransaction =
  | { kind: 'deploy'; title: string; revision: string; started?: string }
  | { kind: 'rollback'; title?: string; from: string | null; to: string | null; started?: string };

export class TransactionJournal {
  readonly file: string;

  constructor(sysrootPath: string) {
    this.file = join(sysrootPath, 'ostree', 'atomhost', 'transaction.json');
  }

  async begin(tx: OpenTransaction): Promise<void> {
    await atomicWriteFile(this.file, JSON.stringify({ ...tx, started: new Date().toISOString() }));
  }

  async read(): Promise<OpenTransaction | null> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as OpenTransaction;
    } catch {
      return null;
    }
  }

  async end(): Promise<void> {
    try {
      await unlink(this.file);
      await fsyncDir(join(this.file, '..'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
