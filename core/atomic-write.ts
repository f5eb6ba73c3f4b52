// The one atomic-write helper: write to a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory. A reader sees the old
// file or the new one, never a torn one, even across a crash.
//
// A process crash (kill -9) never tears anything: the rename alone is atomic and the
// page cache survives the process. The fsyncs only matter for a power loss, and callers
// whose write a later sync covers may skip them (`sync`).
import { closeSync, fsync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * How durable the write is once the call returns (power loss; a process crash never tears):
 *  - 'full' (default): the new content under the name: fsync of the file, rename, fsync of the directory.
 *  - 'data': the content is on disk before the rename, so after a power loss the name has the old
 *    content or the new, never a torn file; the rename itself is made durable by a later sync of the
 *    filesystem (libostree syncs it before it switches the boot entries) or of the directory.
 *  - 'none': no fsync at all; for what a later sync of the filesystem covers, or what readers check
 *    and rebuild (the revision index is sealed by its hash). After a power loss before such a sync
 *    the name may hold the old content, the new, or an empty file.
 */
export type WriteSync = 'full' | 'data' | 'none';

export interface AtomicWriteOptions {
  mode?: number;
  sync?: WriteSync;
}

const fsyncFd = promisify(fsync);

// The files written here are small and local: creating, writing and renaming them only
// touches the page cache and takes microseconds, so those calls are synchronous (each
// promise call would be a thread-pool round trip, which is what a transaction's
// bookkeeping used to spend its time on). The fsyncs, which wait for the disk, stay
// asynchronous, so a daemon keeps answering while they run.
export async function atomicWriteFile(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const sync = options.sync ?? 'full';
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', options.mode ?? 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true });
    fd = openSync(tmp, 'wx', options.mode ?? 0o644);
  }
  try {
    writeFileSync(fd, data);
    if (sync !== 'none') await fsyncFd(fd);
  } catch (err) {
    closeQuietly(fd);
    unlinkQuietly(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkQuietly(tmp);
    throw err;
  }
  if (sync === 'full') await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing: the first error is the one to report
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already failing: the first error is the one to report
  }
}
