// `atomhost status` in its plain spellings, without commander: parsing the argv and building
// the whole program was most of what a status costs over Node's own start-up
// (docs/benchmarks.md, "CLI start-up"). Only argv that commander would take the same way
// come here: the global options (--sysroot PATH, --json, --progress-json) anywhere, the
// `status` command once, its own flags after it, each spelled out and given once. Anything
// else (--help, -bv, --sysroot=PATH, a bare --, an unknown word) goes to program.ts, so
// help, usage errors and their exit codes stay commander's.
import { action, type GlobalOptions } from './context.js';
import { runStatus, type StatusOptions } from './commands/status.js';

const GLOBAL_FLAGS: Record<string, keyof GlobalOptions> = { '--json': 'json', '--progress-json': 'progressJson' };
const STATUS_FLAGS: Record<string, keyof StatusOptions> = { '-b': 'booted', '--booted': 'booted', '-v': 'verbose', '--verbose': 'verbose', '--pending-exit-77': 'pendingExit77' };

/** The options of a plain `status` argv (after node and the script), or null for program.ts to parse. */
export function parsePlainStatus(args: readonly string[]): { globals: GlobalOptions; opts: StatusOptions } | null {
  const globals: GlobalOptions = {};
  const opts: StatusOptions = {};
  let command = false;
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const key: string | undefined = a === '--sysroot' ? 'sysroot' : (GLOBAL_FLAGS[a] ?? (command ? STATUS_FLAGS[a] : undefined) ?? (a === 'status' && !command ? 'status' : undefined));
    if (key === undefined || seen.has(key)) return null;
    seen.add(key);
    if (key === 'status') command = true;
    else if (key === 'sysroot') {
      const path = args[++i];
      // An empty value or one that looks like an option: commander's own rules decide.
      if (path === undefined || path === '' || path.startsWith('-')) return null;
      globals.sysroot = path;
    } else if (a in GLOBAL_FLAGS) globals[key as 'json' | 'progressJson'] = true;
    else opts[key as keyof StatusOptions] = true;
  }
  return command ? { globals, opts } : null;
}

/** Runs a plain `status` and returns true, or returns false (not a plain status: run program.ts). */
export async function runPlainStatus(args: readonly string[]): Promise<boolean> {
  const parsed = parsePlainStatus(args);
  if (!parsed) return false;
  const ctx = { globals: () => parsed.globals };
  await action(ctx, (opts: StatusOptions) => runStatus(ctx, opts))(parsed.opts);
  return true;
}
