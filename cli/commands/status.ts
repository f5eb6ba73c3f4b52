// `atomhost status`: what program.ts registers and status-fast.ts runs for the plain spellings.
import { EXIT } from '../../core/errors.js';
import { printJson, type CliContext } from '../context.js';
import { withHost } from '../host-session.js';
import { renderStatus } from '../render.js';
import { bootedOnly, hasPendingDeployment, PENDING_EXIT } from '../status-select.js';

export interface StatusOptions {
  booted?: boolean;
  verbose?: boolean;
  pendingExit77?: boolean;
}

/** Prints the status and returns the exit code (PENDING_EXIT with --pending-exit-77 and a pending deployment). */
export async function runStatus(ctx: CliContext, opts: StatusOptions): Promise<number> {
  const all = await withHost(ctx, (h) => h.status());
  const s = opts.booted ? bootedOnly(all) : all;
  if (ctx.globals().json) printJson(s);
  else process.stdout.write(`${renderStatus(s, { verbose: opts.verbose, bootedOnly: opts.booted })}\n`);
  return opts.pendingExit77 && hasPendingDeployment(all) ? PENDING_EXIT : EXIT.OK;
}
