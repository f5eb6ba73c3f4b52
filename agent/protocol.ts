// The D-Bus contract of atomhostd, shared by the daemon and the CLI's client: names,
// error mapping (an AtomhostError travels as io.atomhost.Error.<Code> with its JSON).
import { AtomhostError, type AtomhostErrorCode } from '../core/errors.js';

export const BUS_NAME = 'io.atomhost.Agent1';
export const OBJECT_PATH = '/io/atomhost/Agent1';
export const INTERFACE = 'io.atomhost.Agent1';
export const ERROR_PREFIX = 'io.atomhost.Error.';

/** Methods that change the host: root, or polkit's io.atomhost.manage. */
export const MUTATING = new Set(['Upgrade', 'Deploy', 'Rebase', 'Rollback', 'KernelArgs', 'Cleanup', 'SetPinned', 'Cancel', 'CheckUpdate', 'ContainerInstall', 'ContainerUpdate', 'ContainerRollback', 'ContainerUninstall', 'RestartRole', 'RemoteAdd', 'RemoteDelete', 'UpdatesCheck', 'UpdatesPause', 'UpdatesResume']);

export interface FinishedResult {
  transaction: string;
  success: boolean;
  /** The TransactionResult (success) or the error (failure), as JSON. */
  payload: string;
}

export function errorName(code: AtomhostErrorCode): string {
  const tail = code.replace(/^AH_ERR_/, '').toLowerCase().replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
  return `${ERROR_PREFIX}${tail}`;
}

export function encodeError(err: unknown): string {
  const e = err instanceof AtomhostError ? err : new AtomhostError('AH_ERR_FAILED', err instanceof Error ? err.message : String(err));
  return JSON.stringify(e.toJSON());
}

export function decodeError(text: string): AtomhostError {
  try {
    const j = JSON.parse(text) as { code: AtomhostErrorCode; message: string; details?: Record<string, unknown> };
    if (j && typeof j.code === 'string') return new AtomhostError(j.code, j.message, { details: j.details });
  } catch {
    // not ours: a D-Bus error from the bus itself
  }
  return new AtomhostError('AH_ERR_DAEMON', text);
}
