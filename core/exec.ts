// A small promise wrapper over child_process.execFile for the few subprocesses on hot
// paths (the CLI's start-up must stay light; execa costs ~100 ms to import).
import { execFile } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: opts.env, cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : (err as { code?: unknown }).code) : 0;
      if (err && typeof code !== 'number') return reject(err); // could not spawn at all
      resolve({ stdout: String(stdout), stderr: String(stderr), exitCode: (code as number) ?? 0 });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs and returns stdout; a non-zero exit throws with the command's stderr. */
export async function runOk(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return r.stdout;
}
