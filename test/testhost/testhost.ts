// Boots a test host (a real systemd as PID 1 in private namespaces over an overlay of
// the machine's root; test/testhost/boot.sh) once per test file, runs commands inside
// it with nsenter, and powers it off and removes it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const HERE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'testhost');

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export class TestHost {
  readonly dir: string;
  readonly pid: number;

  private constructor(dir: string, pid: number) {
    this.dir = dir;
    this.pid = pid;
  }

  static async boot(): Promise<TestHost> {
    const dir = await mkdtemp(join(tmpdir(), 'atomhost-testhost-'));
    const r = await execa('bash', [join(HERE, 'boot.sh'), dir], { reject: false });
    if (r.exitCode !== 0) {
      await execa('bash', [join(HERE, 'shutdown.sh'), dir], { reject: false });
      throw new Error(`the test host did not boot: ${r.stderr}`);
    }
    return new TestHost(dir, Number(r.stdout.trim().split('\n').pop()));
  }

  /** Runs a command inside the host as root (or as `user`), with a clean environment plus `env`. */
  async exec(cmd: string, args: string[] = [], opts: { env?: Record<string, string>; user?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const env = Object.entries({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...opts.env }).map(([k, v]) => `${k}=${v}`);
    const who = opts.user ? ['setpriv', `--reuid=${opts.user}`, `--regid=${opts.user}`, '--clear-groups'] : [];
    const r = await execa('nsenter', ['-t', String(this.pid), '-m', '-p', '-u', '-i', 'env', '-i', ...env, ...who, cmd, ...args], { reject: false, timeout: opts.timeoutMs ?? 120_000 });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  }

  async sh(script: string, env?: Record<string, string>): Promise<ExecResult> {
    return this.exec('sh', ['-c', script], { env });
  }

  async shutdown(): Promise<void> {
    await execa('bash', [join(HERE, 'shutdown.sh'), this.dir], { reject: false });
  }
}
