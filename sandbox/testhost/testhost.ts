// Boots a test host (a real systemd as PID 1 in private namespaces over an overlay of
// the machine's root; sandbox/testhost/boot.sh) once per test file, the demo or a bench,
// runs commands inside it with nsenter, and powers it off and removes it.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const HERE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'sandbox', 'testhost');

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

  /**
   * Boots a new test host. `binds` are machine directories seen at a path inside (kept
   * across reboots), `enable` units enabled before the first boot; `project: false` boots
   * without the checkout's atomhost installed (for a test that installs the package).
   */
  static async boot(opts: { binds?: [string, string][]; enable?: string[]; agentEnv?: Record<string, string>; project?: boolean } = {}): Promise<TestHost> {
    const dir = await mkdtemp(join(tmpdir(), 'atomhost-testhost-'));
    if (opts.binds?.length || opts.enable?.length || opts.agentEnv || opts.project === false) {
      await execa('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=4g', 'atomhost-testhost', dir]);
      if (opts.project === false) await writeFile(join(dir, 'no-project'), '');
      if (opts.agentEnv) await writeFile(join(dir, 'atomhostd.env'), Object.entries(opts.agentEnv).map(([k, v]) => `${k}=${v}\n`).join(''));
      if (opts.binds?.length) await writeFile(join(dir, 'binds'), opts.binds.map(([s, d]) => `${s} ${d}\n`).join(''));
      if (opts.enable?.length) await writeFile(join(dir, 'enable'), opts.enable.join('\n'));
    }
    return TestHost.#start(dir);
  }

  static async #start(dir: string): Promise<TestHost> {
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

  /**
   * A reboot: powers off keeping the host's disk (the overlay's upper layer), then boots
   * it again; `cmdline` (the kernel arguments of the boot entry to "choose") is what the
   * new boot sees as /proc/cmdline. The returned host replaces this one.
   */
  async reboot(opts: { cmdline?: string } = {}): Promise<TestHost> {
    await execa('bash', [join(HERE, 'shutdown.sh'), '--keep', this.dir], { reject: false });
    if (opts.cmdline !== undefined) await writeFile(join(this.dir, 'cmdline'), `${opts.cmdline}\n`);
    else await rm(join(this.dir, 'cmdline'), { force: true });
    return TestHost.#start(this.dir);
  }

  async shutdown(): Promise<void> {
    await execa('bash', [join(HERE, 'shutdown.sh'), this.dir], { reject: false });
  }
}
