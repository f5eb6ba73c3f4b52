// The verbs of a host, as one interface with two implementations: LocalHost (in
// process, on a sysroot given with --sysroot; also what the daemon runs) and the D-Bus
// client of atomhostd (cli/dbus-backend.ts). The CLI speaks only this interface.
import type { TreeDiff } from '../ostree-bridge/types.js';
import type { ProgressSink } from './progress.js';
import type { Revision, RevisionPage, RevisionPageQuery, RevisionState } from './revision.js';
import type { CommitSignature } from './commit-signature.js';
import type { RemoteAddRequest, RemoteListEntry } from './remotes.js';
import type { UpdatesReport } from './updates/state.js';

export const API_VERSION = 'atomhost.io/v1alpha1';

export interface DeploymentStatus {
  index: number;
  osname: string;
  refspec: string | null;
  checksum: string;
  version: string | null;
  /** Commit time, ISO 8601. */
  timestamp: string | null;
  kargs: string[];
  deploySerial: number;
  default: boolean;
  rollback: boolean;
  booted: boolean;
  staged: boolean;
  pinned: boolean;
  /** The revision this deployment boots (full record), or null for a deployment atomhost has not adopted yet. */
  revision: Revision | null;
  /** Who signed the commit, checked with the keys of the refspec's remote. */
  signature: CommitSignature;
}

/** `atomhost status --json`: one Kubernetes-style object (docs/status.md). */
export interface HostStatus {
  apiVersion: typeof API_VERSION;
  kind: 'Host';
  metadata: { name: string; sysroot: string };
  spec: {
    /** What the host wants to boot: the default deployment's revision. */
    osname: string | null;
    refspec: string | null;
    revision: string | null;
  };
  status: {
    booted: string | null;
    staged: string | null;
    rollback: string | null;
    deployments: DeploymentStatus[];
    /** The transaction running now (daemon only). */
    transaction?: { title: string; caller: string; started: string } | null;
    /** The update agent's state (daemon only; docs/updates.md). */
    updates?: UpdatesReport | null;
  };
}

export interface TxContext {
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface TransactionResult {
  title: string;
  /** False when there was nothing to do. */
  changed: boolean;
  /** The revision the host now boots by default. */
  revision: string | null;
  message: string;
}

/** A host unit the stack adds, drops or re-roles (roles; null where absent). */
export interface HostUnitChange {
  name: string;
  from: string | null;
  to: string | null;
}

export interface ContainerChange {
  name: string;
  image: string | null;
  from: string | null;
  to: string | null;
}

export interface UpdatePreview {
  refspec: string;
  available: boolean;
  from: { checksum: string; version: string | null; revision: string | null };
  to: { checksum: string; version: string | null; timestamp: string | null } | null;
  kargs: { from: string[]; to: string[] };
  /** File changes of the OS tree; only with preview. */
  files: TreeDiff | null;
  containers: ContainerChange[];
  /** Host units of the stack (only when the host follows a stack). */
  units?: HostUnitChange[];
}

export interface KargsEdit {
  append?: string[];
  delete?: string[];
  replace?: string[];
}

export interface RevisionDiff {
  from: string;
  to: string;
  os: { from: { checksum: string; version: string | null }; to: { checksum: string; version: string | null }; files: TreeDiff | null };
  kargs: { from: string[]; to: string[] };
  containers: ContainerChange[];
  units: { name: string; from: string | null; to: string | null }[];
}

export interface HostApi {
  status(): Promise<HostStatus>;
  /** Looks for an update on the default deployment's refspec; with preview, also pulls it and diffs the tree. */
  checkUpdate(opts: { preview: boolean }, ctx?: TxContext): Promise<UpdatePreview>;
  upgrade(ctx?: TxContext): Promise<TransactionResult>;
  /** Deploys a version (from the commit history of the refspec) or a commit checksum. */
  deploy(target: string, ctx?: TxContext): Promise<TransactionResult>;
  /** Switches to another refspec (also the first deployment of an empty sysroot, with osname). */
  rebase(refspec: string, opts: { osname?: string }, ctx?: TxContext): Promise<TransactionResult>;
  rollback(ctx?: TxContext): Promise<TransactionResult>;
  kargs(edit: KargsEdit, ctx?: TxContext): Promise<TransactionResult>;
  cleanup(opts: { rollback: boolean }, ctx?: TxContext): Promise<TransactionResult>;
  setPinned(index: number, pinned: boolean, ctx?: TxContext): Promise<TransactionResult>;
  /** History newest first, paged (all when the query has no limit). */
  listRevisions(page?: RevisionPageQuery): Promise<RevisionPage>;
  diff(from: string, to: string): Promise<RevisionDiff>;
  setRevisionState?(id: string, state: RevisionState, reason?: string): Promise<void>;
  /** OSTree remotes: adding one verifies by default (a key, or an explicit noVerify). */
  remoteAdd(req: RemoteAddRequest): Promise<RemoteListEntry>;
  remoteList(): Promise<RemoteListEntry[]>;
  remoteDelete(name: string): Promise<void>;
  close(): Promise<void>;
}
