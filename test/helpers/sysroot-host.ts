// A test host (real systemd as PID 1, the system bus, atomhostd by D-Bus activation) whose
// daemon serves a sysroot of its own on tmpfs: testos 1.0, deployed from a repository
// this machine serves on 127.0.0.1. The setup several daemon test files share.
import { join } from 'node:path';
import { TestHost } from '../testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';

export const SYSROOT = '/var/lib/atomhost-test/sysroot';
export const REF = 'testos/stable';

export interface SysrootHost {
  th: TestHost;
  scratch: Scratch;
  server: StaticServer;
  /** Commits version (with extra files) to the served repository's REF. */
  publish(version: string, files?: Record<string, string>): Promise<void>;
  dispose(): Promise<void>;
}

export async function bootSysrootHost(scratchPrefix: string, opts: { files?: (version: string) => Record<string, string> } = {}): Promise<SysrootHost> {
  const scratch = await makeScratch(scratchPrefix);
  const repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  const publish = async (version: string, files: Record<string, string> = {}) => {
    await buildOsTree(join(scratch.dir, 'tree'), { osname: 'testos', version, files: { ...opts.files?.(version), ...files } });
    await commitTree(repo, REF, join(scratch.dir, 'tree'), version);
  };
  await publish('1.0');
  const server = await serveDirectory(repo);
  const th = await TestHost.boot();
  const host: SysrootHost = {
    th,
    scratch,
    server,
    publish,
    async dispose() {
      await th.shutdown();
      await server.close();
      await scratch.dispose();
    },
  };
  try {
    await initSysroot(th, server.url, { serveByDaemon: true });
  } catch (err) {
    await host.dispose();
    throw err;
  }
  return host;
}

/**
 * Inside a booted test host: SYSROOT on a tmpfs of its own, testos deployed from
 * `repoUrl` (REF) with the test host's own `atomhost --sysroot`; with `serveByDaemon`,
 * atomhostd.env points the daemon at it. `env` is given to those commands.
 */
export async function initSysroot(th: TestHost, repoUrl: string, opts: { env?: Record<string, string>; serveByDaemon?: boolean } = {}): Promise<void> {
  const setup = await th.sh(
    `set -e; mkdir -p /var/lib/atomhost-test; mount -t tmpfs tmpfs /var/lib/atomhost-test; mkdir -p ${SYSROOT};
    ostree admin init-fs ${SYSROOT}; ostree admin os-init --sysroot=${SYSROOT} testos;
    ostree remote add --no-gpg-verify --repo=${SYSROOT}/ostree/repo origin ${repoUrl};
    atomhost --sysroot ${SYSROOT} rebase origin:${REF} --os testos` +
      (opts.serveByDaemon ? `;\n    mkdir -p /etc/atomhost; echo ATOMHOST_SYSROOT=${SYSROOT} > /etc/atomhost/atomhostd.env` : ''),
    opts.env,
  );
  if (setup.exitCode !== 0) throw new Error(`test host setup: ${setup.stderr}`);
}
