// %pre and %post scripts: written to a file, run by their interpreter (in the new root
// with chroot unless --nochroot), stdout and stderr kept in a log, as Anaconda does.
import { spawn } from 'node:child_process';
import { open, readFile, writeFile, chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ScriptSpec } from './types.js';

export interface ScriptRun {
  section: '%pre' | '%post';
  file: string;
  line: number;
  exitCode: number;
  /** The log on the provisioning host (for %post in the image: its path inside the installed system too). */
  log: string;
  logInTarget: string | null;
  /** The last lines of the log (to say why a script failed after its image is gone). */
  tail: string;
}

/**
 * Runs one script. `chroot` is the new root (the script file goes to its /tmp); without it
 * the script runs on the provisioning host in `workdir`. Returns the exit code; the caller
 * decides (--erroronfail) whether it is fatal.
 */
export async function runScript(
  s: ScriptSpec,
  index: number,
  opts: { chroot: string | null; workdir: string; logPath: string; logInTarget: string | null; env: NodeJS.ProcessEnv },
): Promise<ScriptRun> {
  const name = `ks-script-${s.kind}-${index}`;
  const scriptHost = opts.chroot ? join(opts.chroot, 'tmp', name) : join(opts.workdir, name);
  await writeFile(scriptHost, s.body);
  await chmod(scriptHost, 0o700);
  await mkdir(dirname(opts.logPath), { recursive: true });
  const log = await open(opts.logPath, 'a', 0o600);
  try {
    const [cmd, args] = opts.chroot ? ['chroot', [opts.chroot, s.interpreter, `/tmp/${name}`]] : [s.interpreter, [scriptHost]];
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = spawn(cmd, args, { cwd: opts.chroot ? '/' : opts.workdir, env: opts.env, stdio: ['ignore', log.fd, log.fd] });
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    await log.sync();
    const tail = (await readFile(opts.logPath, 'utf8')).trimEnd().split('\n').slice(-10).join('\n');
    return { section: `%${s.kind}`, file: s.at.file, line: s.at.line, exitCode, log: opts.logPath, logInTarget: opts.logInTarget, tail };
  } finally {
    await log.close();
  }
}
