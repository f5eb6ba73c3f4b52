// The errors the OSTree bridge throws. The bridge imports nothing of the rest of the
// project (it can be used and tested on its own), so the project's root error class
// lives here and core/errors.ts re-exports these with the others: one class each,
// whichever module a caller imports it from.
// One root error class with stable codes, after undici's errors: a code per kind,
// a user-facing one-line message, the original error kept as `cause`.

export type AtomhostErrorCode =
  | 'AH_ERR_FAILED'
  | 'AH_ERR_INVALID_SYSROOT'
  | 'AH_ERR_LOCKED'
  | 'AH_ERR_BUSY'
  | 'AH_ERR_NOT_AUTHORIZED'
  | 'AH_ERR_INVALID_ARGUMENT'
  | 'AH_ERR_INVALID_REFSPEC'
  | 'AH_ERR_NOT_FOUND'
  | 'AH_ERR_REMOTE'
  | 'AH_ERR_CANCELLED'
  | 'AH_ERR_CORRUPT'
  | 'AH_ERR_REGISTRY'
  | 'AH_ERR_DIGEST_MISMATCH'
  | 'AH_ERR_UNSAFE_LAYER'
  | 'AH_ERR_UNSUPPORTED'
  | 'AH_ERR_KICKSTART'
  | 'AH_ERR_SYSTEMD'
  | 'AH_ERR_DAEMON'
  | 'AH_ERR_NO_UPDATE'
  | 'AH_ERR_UNHEALTHY'
  | 'AH_ERR_NO_SPACE'
  | 'AH_ERR_SIGNATURE';

const kAtomhostError = Symbol.for('atomhost.error');

export class AtomhostError extends Error {
  readonly code: AtomhostErrorCode;
  /** Structured details for --json output (file, line, field, ...). */
  readonly details: Record<string, unknown>;

  constructor(code: AtomhostErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'AtomhostError';
    this.code = code;
    this.details = options?.details ?? {};
  }

  // Brand check so instanceof works across duplicate module copies (undici does the same).
  // Only for the root class: subclasses inherit this static method, and with the brand
  // check every AtomhostError would pass as a NotFoundError, a CancelledError, ...
  static override [Symbol.hasInstance](obj: unknown): boolean {
    if (this !== AtomhostError) return Function.prototype[Symbol.hasInstance].call(this, obj);
    return typeof obj === 'object' && obj !== null && (obj as Record<symbol, unknown>)[kAtomhostError] === true;
  }

  get [kAtomhostError](): boolean {
    return true;
  }

  toJSON(): { code: AtomhostErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export class InvalidSysrootError extends AtomhostError {
  constructor(path: string, why: string, cause?: unknown) {
    super('AH_ERR_INVALID_SYSROOT', `${path} is not an OSTree sysroot: ${why}`, { cause, details: { sysroot: path } });
    this.name = 'InvalidSysrootError';
  }
}

export class SysrootLockedError extends AtomhostError {
  constructor(path: string) {
    super('AH_ERR_LOCKED', `sysroot ${path} is locked by another writer (another atomhost or ostree admin is changing it); try again when it is done`, {
      details: { sysroot: path },
    });
    this.name = 'SysrootLockedError';
  }
}

export class NotFoundError extends AtomhostError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('AH_ERR_NOT_FOUND', message, { details });
    this.name = 'NotFoundError';
  }
}

export class CancelledError extends AtomhostError {
  constructor(what = 'operation') {
    super('AH_ERR_CANCELLED', `${what} cancelled`);
    this.name = 'CancelledError';
  }
}

/** A commit whose signature a verifying remote does not accept (unsigned, unknown key, bad or expired). */
export class SignatureError extends AtomhostError {
  constructor(remote: string, commit: string, reason: string, cause?: unknown) {
    super('AH_ERR_SIGNATURE', `refused ${commit} from remote ${remote}: ${reason}; nothing was changed`, { cause, details: { remote, commit, reason } });
    this.name = 'SignatureError';
  }
}
