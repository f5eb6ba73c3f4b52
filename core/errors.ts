// The project's errors: one root class with stable codes (AtomhostError, defined with the
// OSTree bridge's own errors in ostree-bridge/errors.ts and re-exported here) and a class
// per kind that callers test with instanceof.

export {
  AtomhostError,
  CancelledError,
  InvalidSysrootError,
  NotFoundError,
  SignatureError,
  SysrootLockedError,
  type AtomhostErrorCode,
} from '../ostree-bridge/errors.js';
import { AtomhostError, type AtomhostErrorCode } from '../ostree-bridge/errors.js';

export class InvalidArgumentError extends AtomhostError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('AH_ERR_INVALID_ARGUMENT', message, { details });
    this.name = 'InvalidArgumentError';
  }
}

export class NoUpdateError extends AtomhostError {
  constructor(message: string) {
    super('AH_ERR_NO_UPDATE', message);
    this.name = 'NoUpdateError';
  }
}

/** A change that failed the health gate; the host was put back on its last healthy revision. */
export class UnhealthyError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('AH_ERR_UNHEALTHY', message, { details });
    this.name = 'UnhealthyError';
  }
}

/** Exit codes of the CLI, documented in README.md. */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  NOT_AUTHORIZED: 4,
  LOCKED: 5,
  NO_UPDATE: 77,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof AtomhostError) {
    switch (err.code) {
      case 'AH_ERR_INVALID_ARGUMENT':
        return EXIT.USAGE;
      case 'AH_ERR_NOT_AUTHORIZED':
        return EXIT.NOT_AUTHORIZED;
      case 'AH_ERR_LOCKED':
      case 'AH_ERR_BUSY':
        return EXIT.LOCKED;
      case 'AH_ERR_NO_UPDATE':
        return EXIT.NO_UPDATE;
      default:
        return EXIT.FAILED;
    }
  }
  return EXIT.FAILED;
}

/** Wraps any thrown value as an AtomhostError, keeping the original as cause. */
export function asAtomhostError(err: unknown, code: AtomhostErrorCode = 'AH_ERR_FAILED', context?: string): AtomhostError {
  if (err instanceof AtomhostError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new AtomhostError(code, context ? `${context}: ${msg}` : msg, { cause: err });
}
