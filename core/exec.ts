// A small promise wrapper over child_process.execFile for the few subprocesses on hot
// paths (the CLI's start-up must stay light; execa costs ~100 ms to import).
import { execFile, spawn } from 'node:child_process';

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

/**
 * Runs a command that must not outlive its deadline (health probes, health.d scripts): it
 * gets a process group of its own, and on timeout or abort the whole group is killed, so
 * a probe that forked a grandchild leaves nothing behind.
 */
export function runBounded(cmd: string, args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ExecResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    const keep = (d: Buffer) => {
      out += String(d);
      if (out.length > 64 * 1024) out = out.slice(-32 * 1024);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    const onAbort = () => killGroup();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // The group may still hold grandchildren that closed their output: end them too.
      killGroup();
      resolve({ stdout: out, stderr: '', exitCode: code ?? (sig ? 128 : 1), timedOut });
    });
  });
}
