// Drain hooks: argv run without a shell, each bounded by its timeout (its whole process
// group is killed then, as health probes are). The first that fails stops the list.
import { runBounded } from '../exec.js';
import type { Hook } from './config.js';

export interface HookFailure {
  argv: string[];
  /** "exit 3", "timed out after 10000 ms", "cannot run: …" */
  why: string;
  /** The last lines the hook printed. */
  output: string;
}

/** Runs the hooks in order; null when all succeeded, else the first failure. */
export async function runHooks(hooks: Hook[], signal?: AbortSignal): Promise<HookFailure | null> {
  for (const h of hooks) {
    try {
      const r = await runBounded(h.argv[0], h.argv.slice(1), { timeoutMs: h.timeoutMs, signal });
      const output = r.stdout.trim().split('\n').slice(-10).join('\n');
      if (r.timedOut) return { argv: h.argv, why: `timed out after ${h.timeoutMs} ms`, output };
      if (r.exitCode !== 0) return { argv: h.argv, why: `exit ${r.exitCode}`, output };
    } catch (err) {
      return { argv: h.argv, why: `cannot run: ${(err as Error).message}`, output: '' };
    }
  }
  return null;
}

export function describeFailure(kind: string, f: HookFailure): string {
  return `${kind} hook ${JSON.stringify(f.argv)} ${f.why}${f.output ? `: ${f.output.split('\n').at(-1)}` : ''}`;
}
