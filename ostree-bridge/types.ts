// Types at the boundary of the libostree bridge.

export interface Deployment {
  /** Position in the sysroot's deployment list; 0 is the default boot entry. */
  index: number;
  osname: string;
  checksum: string;
  deploySerial: number;
  bootSerial: number;
  bootcsum: string;
  /** Kernel arguments from the deployment's bootloader entry, without ostree= itself. */
  kargs: string[];
  /** The origin keyfile as text, or null when the deployment has none. */
  origin: string | null;
  pinned: boolean;
  staged: boolean;
  booted: boolean;
  /** Absolute path of the deployment's root directory. */
  path: string;
}

export interface CommitInfo {
  checksum: string;
  parent: string | null;
  subject: string;
  body: string;
  /** Seconds since the epoch. */
  timestamp: number;
  version: string | null;
  /** String-valued commit metadata (other values are printed in GVariant text form). */
  metadata: Record<string, string>;
}

export interface PullProgress {
  /** Bytes transferred so far. */
  bytesTransferred: number;
  fetched: number;
  requested: number;
  metadataFetched: number;
  outstandingFetches: number;
  scannedMetadata: number;
  status: string;
}

export interface PullOptions {
  remote: string;
  refs: string[];
  /** Fetch only the commit objects (what `upgrade --check` needs). */
  commitOnly?: boolean;
  /** History depth to fetch: 0 only the tip, -1 everything. */
  depth?: number;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
}

export interface DeployOptions {
  osname: string;
  checksum: string;
  /** Origin keyfile text written into the new deployment. */
  origin: string;
  kargs: string[];
  /** Index of the deployment whose /etc is merged; defaults to ostree's merge deployment. */
  mergeIndex?: number;
  /** Stage it (booted hosts only): written now, finalized at shutdown with the /etc of that moment. */
  stage?: boolean;
  /**
   * Keep every existing deployment (true), or let libostree drop the non-booted,
   * non-merge deployments of this osname as `ostree admin deploy` does (false).
   */
  retain?: boolean;
}

/** One entry of a commit's directory, as `ostree ls -C` shows it. */
export interface CommitDirEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Bytes of a regular file; 0 for the others. */
  size: number;
  /** The object checksum: a file's content object, a directory's dirtree. */
  checksum: string;
}

export interface TreeDiff {
  added: string[];
  removed: string[];
  modified: string[];
}

/** One GPG signature on a commit, as libostree checked it against a remote's keys. */
export interface GpgSignature {
  valid: boolean;
  sigExpired: boolean;
  keyExpired: boolean;
  keyRevoked: boolean;
  keyMissing: boolean;
  fingerprint: string;
  /** Signing time, seconds since the epoch. */
  timestamp: number;
  userName: string;
  userEmail: string;
}

/** How a remote checks what it serves (from the repo config). */
export interface RemoteInfo {
  name: string;
  url: string;
  gpgVerify: boolean;
  /** ostree's sign-verify (ed25519); false when off. */
  signVerify: boolean;
  /** The keys of the remote's own GPG keyring (NAME.trustedkeys.gpg). */
  gpgKeys: { fingerprint: string; uid: string | null }[];
}
