// Opening the host a command works on (in process with --sysroot, atomhostd otherwise) and
// running a verb on it with progress drawn and the connection closed after. Apart from
// program.ts so that the plain `status` (status-fast.ts) runs it without commander.
import type { HostApi, TxContext } from '../core/host-api.js';
import type { CliContext } from './context.js';
import { progressView } from './progress-view.js';

export async function openHost(c: CliContext): Promise<HostApi> {
  const { sysroot } = c.globals();
  if (sysroot) return (await import('./local-host.js')).openLocalHost(sysroot);
  return (await import('./dbus-backend.js')).connectDaemon();
}

/** Runs a host verb with progress drawn on the terminal, closing the connection after. */
export async function withHost<T>(c: CliContext, fn: (host: HostApi, tx: TxContext) => Promise<T>): Promise<T> {
  const g = c.globals();
  const view = progressView({ json: g.json ?? false, jsonLines: g.progressJson ?? false });
  const abort = new AbortController();
  const onSigint = () => {
    process.stderr.write('\ncancelling...\n');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  const host = await openHost(c);
  try {
    return await fn(host, { progress: view.sink, signal: abort.signal });
  } finally {
    view.done();
    process.off('SIGINT', onSigint);
    await host.close();
  }
}
