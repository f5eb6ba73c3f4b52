// What every CLI command gets: the global options and a way to run an action with the
// CLI's uniform error handling (one line on stderr, or JSON with --json; exit code by error kind).
import type { Command } from 'commander';
import { AtomhostError, exitCodeFor, asAtomhostError } from '../core/errors.js';

export interface GlobalOptions {
  /** Operate in-process on this sysroot instead of asking atomhostd. */
  sysroot?: string;
  json?: boolean;
  /** Progress events as JSON Lines on stderr. */
  progressJson?: boolean;
}

export interface CliContext {
  globals(): GlobalOptions;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error as atomhost does everywhere and returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const e = err instanceof AtomhostError ? err : asAtomhostError(err);
  if (json) process.stderr.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
  else process.stderr.write(`error: ${e.message}\n`);
  if (process.env.ATOMHOST_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return exitCodeFor(err);
}

/** Wraps a command action: errors become one line and an exit code. */
export function action<A extends unknown[]>(ctx: CliContext, fn: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      process.exitCode = code ?? 0;
    } catch (err) {
      process.exitCode = reportError(err, ctx.globals().json ?? false);
    }
  };
}

export type Registrar = (program: Command, ctx: CliContext) => void;
