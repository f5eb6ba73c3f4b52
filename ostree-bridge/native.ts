// Loads the compiled libostree addon (built by scripts/build.sh from ostree-bridge/native).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { CommitInfo, CommitDirEntry, Deployment, GpgSignature, PullProgress, TreeDiff } from './types.js';

export interface NativeSysroot {
  load(): Promise<Deployment[]>;
  tryLock(): boolean;
  unlock(): void;
  /** Closes the sysroot's and repo's file descriptors; the next call loads again. */
  unload(): void;
  deployments(): Deployment[];
  repoPath(): string;
  resolveRev(rev: string): string | null;
  readCommit(checksum: string): CommitInfo;
  verifyCommit(checksum: string, remote: string): GpgSignature[];
  /** noSignVerify(Summary): libostree's disable-sign-verify(-summary) pull options (the caller verifies). */
  pull(remote: string, refs: string[], commitOnly: boolean, depth: number, onProgress?: (p: PullProgress) => void, noSignVerify?: boolean, noSignVerifySummary?: boolean): Promise<void>;
  cancel(): void;
  deploy(opts: { osname: string; checksum: string; origin: string; kargs: string[]; mergeIndex?: number; retain?: boolean }): Promise<Deployment[]>;
  writeDeployments(order: number[]): Promise<Deployment[]>;
  cleanup(): Promise<void>;
  setPinned(index: number, pinned: boolean): Promise<void>;
  writeOrigin(index: number, origin: string): Promise<void>;
  diff(a: string, b: string): Promise<TreeDiff>;
  commitDir(dir: string, subject: string, metadata: [string, string][], consume: boolean): Promise<string>;
  setRefs(refs: [string, string | null][]): Promise<void>;
  checkout(commit: string, dest: string): Promise<void>;
  readFile(rev: string, path: string): Promise<Buffer>;
  /** null when the commit has no such directory. */
  listDir(rev: string, path: string): Promise<CommitDirEntry[] | null>;
  listRefs(prefix: string): string[];
}

export interface NativeError extends Error {
  domain?: string;
  gcode?: number;
  cancelled?: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/ostree-bridge/native.js → <root>/ostree-bridge/native/build/Release
const addonPath = join(here, '..', '..', 'ostree-bridge', 'native', 'build', 'Release', 'ostree_bridge.node');

export interface NativeAddon {
  Sysroot: new (path: string) => NativeSysroot;
  /** The commit object's bytes (its serialized GVariant) in the repo at repoPath. */
  commitBytes(repoPath: string, checksum: string): Buffer;
  /** The `aay` entry `key` of a commit's detached metadata; null when absent. */
  detachedSignatures(repoPath: string, checksum: string, key: string): Buffer[] | null;
  /** Sets (an empty list: removes) the `aay` entry `key` of a commit's detached metadata. */
  writeDetachedSignatures(repoPath: string, checksum: string, key: string, signatures: Buffer[]): void;
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (!cached) {
    const require = createRequire(import.meta.url);
    try {
      cached = require(addonPath);
    } catch (err) {
      throw new Error(`the libostree addon is not built (${addonPath}); run: npm run setup`, { cause: err });
    }
  }
  return cached!;
}
