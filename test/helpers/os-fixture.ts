// One sandbox host per test file: a tmpfs, an archive repo served on 127.0.0.1, a
// sysroot whose first deployment atomhost made, and helpers to publish versions, run
// the real CLI, and snapshot everything a failed command must leave alone.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo, type OsTreeSpec } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';

export const OS = 'testos';
export const REF = 'testos/x86_64/stable';
export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');

export interface CliResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export class OsFixture {
  scratch!: Scratch;
  server!: StaticServer;
  repo = '';
  sysroot = '';
  #tree = '';

  static async create(opts: { versions?: string[] } = {}): Promise<OsFixture> {
    const f = new OsFixture();
    f.scratch = await makeScratch('atomhost-test-');
    f.repo = join(f.scratch.dir, 'repo');
    f.#tree = join(f.scratch.dir, 'tree');
    f.sysroot = join(f.scratch.dir, 'sysroot');
    await initArchiveRepo(f.repo);
    for (const v of opts.versions ?? ['1.0']) await f.publish(v);
    f.server = await serveDirectory(f.repo);
    await mkdir(f.sysroot);
    await execa('ostree', ['admin', 'init-fs', f.sysroot]);
    await execa('ostree', ['admin', 'os-init', `--sysroot=${f.sysroot}`, OS]);
    await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${f.sysroot}/ostree/repo`, 'origin', f.server.url]);
    return f;
  }

  /** A fixture whose sysroot already has its first deployment (made by `atomhost rebase`). */
  static async createDeployed(opts: { versions?: string[] } = {}): Promise<OsFixture> {
    const f = await OsFixture.create({ versions: opts.versions ?? ['1.0'] });
    const r = await f.cli('rebase', `origin:${REF}`, '--os', OS);
    if (r.exitCode !== 0) throw new Error(`first deployment: ${r.stderr}`);
    return f;
  }

  /** Commits a new version of the OS to the served repo; returns its checksum. */
  async publish(version: string, extra: Partial<OsTreeSpec> = {}): Promise<string> {
    await buildOsTree(this.#tree, { osname: OS, version, files: { 'usr/share/testos/VERSION': `${version}\n` }, ...extra });
    return commitTree(this.repo, REF, this.#tree, version);
  }

  async cli(...args: string[]): Promise<CliResult> {
    const r = await execa(process.execPath, [CLI, '--sysroot', this.sysroot, ...args], { reject: false, env: { ATOMHOST_DEBUG: '' } });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  }

  async cliJson<T>(...args: string[]): Promise<T> {
    const r = await this.cli('--json', ...args);
    if (r.exitCode !== 0) throw new Error(`atomhost ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** `ostree admin status` as ostree itself prints it. */
  async ostreeStatus(): Promise<string> {
    return (await execa('ostree', ['admin', 'status', `--sysroot=${this.sysroot}`])).stdout;
  }

  /** Deployment checksums with their serials, in boot order, as ostree lists them. */
  async ostreeDeployments(): Promise<string[]> {
    return (await this.ostreeStatus())
      .split('\n')
      .map((l) => /^\S?\s*\S+ ([0-9a-f]{64}\.\d+)/.exec(l)?.[1])
      .filter((x): x is string => Boolean(x));
  }

  /** The BLS entries: file name → content. */
  async bootEntries(): Promise<Record<string, string>> {
    const dir = join(this.sysroot, 'boot', 'loader', 'entries');
    const out: Record<string, string> = {};
    for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) out[f] = await readFile(join(dir, f), 'utf8');
    return out;
  }

  /** Entries sorted as a bootloader shows them (highest version first): title and options. */
  async bootMenu(): Promise<{ title: string; options: string }[]> {
    const entries = Object.values(await this.bootEntries()).map((c) => ({
      version: Number(/^version (\d+)/m.exec(c)?.[1] ?? 0),
      title: /^title (.*)$/m.exec(c)?.[1] ?? '',
      options: /^options (.*)$/m.exec(c)?.[1] ?? '',
    }));
    return entries.sort((a, b) => b.version - a.version).map(({ title, options }) => ({ title, options }));
  }

  async revisionFiles(): Promise<Record<string, string>> {
    const dir = join(this.sysroot, 'ostree', 'atomhost', 'revisions');
    const out: Record<string, string> = {};
    for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) out[f] = await readFile(join(dir, f), 'utf8');
    return out;
  }

  /** Everything a failed command must leave exactly as it was. */
  async snapshot(): Promise<{ deployments: string[]; boot: Record<string, string>; revisions: Record<string, string>; origins: string[] }> {
    const deployments = await this.ostreeDeployments();
    const origins: string[] = [];
    for (const d of deployments) origins.push(await readFile(join(this.sysroot, 'ostree', 'deploy', OS, 'deploy', `${d}.origin`), 'utf8'));
    return { deployments, boot: await this.bootEntries(), revisions: await this.revisionFiles(), origins };
  }

  async dispose(): Promise<void> {
    await this.server?.close();
    await this.scratch?.dispose();
  }
}
