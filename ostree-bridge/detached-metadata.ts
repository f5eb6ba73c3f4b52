// A commit's detached metadata, where ostree's sign API keeps its signatures (ostree.sign.ed25519:
// an array of signatures over the commit object's bytes). Works on any repo by path: the
// sysroot's, or a served one that a build machine signs.
import { NotFoundError } from './errors.js';
import { loadAddon } from './native.js';

/** The commit object's bytes as stored: what an ostree sign-API signature covers. */
export function commitObjectBytes(repoPath: string, checksum: string): Buffer {
  try {
    return loadAddon().commitBytes(repoPath, checksum);
  } catch (err) {
    throw new NotFoundError(`commit ${checksum} is not in the repository ${repoPath}: ${(err as Error).message}`, { checksum });
  }
}

/** The signatures under `key` (type aay) in the commit's detached metadata; [] when there are none. */
export function readDetachedSignatures(repoPath: string, checksum: string, key: string): Buffer[] {
  try {
    return loadAddon().detachedSignatures(repoPath, checksum, key) ?? [];
  } catch (err) {
    throw new NotFoundError(`reading the detached metadata of ${checksum} in ${repoPath}: ${(err as Error).message}`, { checksum });
  }
}

/** Replaces the signatures under `key`, keeping the other detached metadata (an empty list removes the key). */
export function writeDetachedSignatures(repoPath: string, checksum: string, key: string, signatures: Buffer[]): void {
  loadAddon().writeDetachedSignatures(repoPath, checksum, key, signatures);
}
