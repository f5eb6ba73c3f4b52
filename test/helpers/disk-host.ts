// The machine-side half of a daemon test: a scratch tmpfs with a local registry, an archive
// repository serving testos 1.0 over HTTP, and the host's disk (a sysroot deployed from that
// repository) that every boot of the test host binds at `inside`, so the disk outlives
// reboots. The daemon test files (security, metrics, stack, hostile layers, registries.conf)
// each wrote this, and its teardown, again.
import { join } from 'node:path';
import { TestHost } from '../testhost/testhost.js';
import { startRegistry, type Registry } from '../containers/fixtures.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import { makeHostDisk } from '../../sandbox/host-disk.js';

export const REF = 'testos/stable';

export interface DiskHost {
  scratch: Scratch;
  reg: Registry;
  /** The archive repository the host's origin remote points at (served by `server`). */
  repo: string;
  server: StaticServer;
  /** The host's disk on the machine; `inside` in the test host. */
  disk: string;
  inside: string;
  /** The sysroot atomhostd serves, as the test host sees it. */
  sysroot: string;
  /** Commits testos `version` (its VERSION file and `files`) to REF. */
  publish(version: string, files?: Record<string, string>): Promise<void>;
  /** Boots a test host with the disk bound and atomhostd pointed at its sysroot (plus `agentEnv`). */
  boot(opts?: { enable?: string[]; agentEnv?: Record<string, string> }): Promise<TestHost>;
  /**
   * Shuts `th` down (the host this file ended with: reboots replace it), printing the last
   * `journalLines` of atomhostd's journal first so a failure can be read afterwards, then
   * stops the servers and frees the scratch space. Safe after a partial setup.
   */
  dispose(th: TestHost | undefined, opts?: { journalLines?: number }): Promise<void>;
}

export async function prepareDiskHost(prefix: string, opts: { sizeMiB?: number; inside?: string } = {}): Promise<DiskHost> {
  const scratch = await makeScratch(prefix, opts.sizeMiB);
  const inside = opts.inside ?? '/var/lib/atomhost-test';
  const sysroot = `${inside}/sysroot`;
  const repo = join(scratch.dir, 'repo');
  const disk = join(scratch.dir, 'disk');
  let reg: Registry | undefined;
  let server: StaticServer | undefined;
  const publish = async (version: string, files: Record<string, string> = {}) => {
    const tree = join(scratch.dir, 'tree');
    await buildOsTree(tree, { osname: 'testos', version, files: { 'usr/share/testos/VERSION': `${version}\n`, ...files } });
    await commitTree(repo, REF, tree, version);
  };
  const dispose = async (th: TestHost | undefined, d: { journalLines?: number } = {}) => {
    if (th && d.journalLines) {
      const j = await th.exec('journalctl', ['-u', 'atomhostd', '--no-pager', '-o', 'cat', '-n', String(d.journalLines)]);
      process.stderr.write(`# atomhostd journal (last ${d.journalLines} lines):\n${j.stdout.replace(/^/gm, '#   ')}\n`);
    }
    await th?.shutdown();
    await server?.close();
    await reg?.stop();
    await scratch.dispose();
  };
  try {
    reg = await startRegistry(join(scratch.dir, 'registry'));
    await initArchiveRepo(repo);
    await publish('1.0');
    server = await serveDirectory(repo);
    await makeHostDisk(disk, { osname: 'testos', ref: REF, repoUrl: server.url });
  } catch (err) {
    await dispose(undefined);
    throw err;
  }
  return {
    scratch, reg, repo, server, disk, inside, sysroot, publish, dispose,
    boot: (b = {}) => TestHost.boot({ binds: [[disk, inside]], enable: b.enable, agentEnv: { ATOMHOST_SYSROOT: sysroot, ...b.agentEnv } }),
  };
}
