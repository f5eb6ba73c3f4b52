// System containers side by side, same local registry, one run:
//  - install-and-start of a ~50 MiB image in 3 layers: atomhost (pull into the OSTree
//    store, checkout, config, then `runc run -d`) vs skopeo copy + umoci unpack + runc run
//    vs podman run (pull included);
//  - bytes on disk for a second version whose big layer was rebuilt with a few files
//    changed (as a CI rebuild does): the OSTree repo's growth vs podman's storage growth;
//  - where an install's time goes (pull, checkout, the revision's deployment, CLI start-up),
//    and with BENCH_BASELINE_CLI=<other build>/dist/cli/main.js that build's install too.
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { makeScratch } from '../sandbox/scratch.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { buildAndPush, freePort, startRegistry } from '../sandbox/registry.js';
import { compare, median, printResult, type BenchResult } from './report.js';
import { LocalHost } from '../core/local-host.js';
import { ImageStore } from '../containers/store.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Another build's cli/main.js (e.g. the main branch's), timed in the same rounds for a before/after. */
const BASELINE_CLI = process.env.BENCH_BASELINE_CLI;

function blob(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let h = Buffer.from(seed);
  for (let off = 0; off < bytes; off += 64) {
    h = createHash('sha512').update(h).digest();
    h.copy(out, off);
  }
  return out;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function du(path: string): Promise<number> {
  return Number((await execa('du', ['-sb', path])).stdout.split('\t')[0]);
}

export async function benchContainers(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-ctr-', 6144);
  const reg = await startRegistry(join(scratch.dir, 'registry'));
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  const env = { ATOMHOST_INSECURE_REGISTRIES: reg.host };
  try {
    // Many files per layer, as real images have: 2 × 24 MiB in 64 KiB files.
    const files = (tag: string, n: number, changed = 0) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`opt/app/${tag}/f${i}`, blob(`${tag}-${i < changed ? 'v2' : 'v1'}-${i}`, 64 * 1024)]));
    const port = await freePort();
    const image = (big: Record<string, Buffer>) => ({ layers: [{ busybox: true }, { files: files('lib', 384) }, { files: big }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/'] });
    await buildAndPush(reg.host, 'bench:1', image(files('app', 384)));
    // A sysroot for atomhost (the store is its OSTree repo).
    const repo = join(scratch.dir, 'osrepo');
    await initArchiveRepo(repo);
    await buildOsTree(join(scratch.dir, 'tree'), { osname: 'benchos', version: '1' });
    await commitTree(repo, 'benchos/stable', join(scratch.dir, 'tree'), '1');
    const srv = await serveDirectory(repo);
    const sysroot = join(scratch.dir, 'sysroot');
    await mkdir(sysroot);
    await execa('ostree', ['admin', 'init-fs', sysroot]);
    await execa('ostree', ['admin', 'os-init', `--sysroot=${sysroot}`, 'benchos']);
    await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${sysroot}/ostree/repo`, 'origin', srv.url]);
    await execa(process.execPath, [CLI, '--sysroot', sysroot, 'rebase', 'origin:benchos/stable', '--os', 'benchos']);
    await srv.close();
    const runcRoot = join(scratch.dir, 'runc');
    const runDetached = (bundle: string, id: string) => execa('runc', ['--root', runcRoot, 'run', '--detach', '--bundle', bundle, id], { stdio: 'ignore' });
    const killRun = (id: string) => execa('runc', ['--root', runcRoot, 'delete', '--force', id], { reject: false });
    const waitUp = async () => {
      for (let i = 0; i < 200; i++) {
        if (await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false)) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the container did not answer');
    };

    const t = { atomhost: [] as number[], baseline: [] as number[], raw: [] as number[], podman: [] as number[] };
    // atomhost: fresh store each round (a first install), then start the bundle.
    const installAndStart = async (cli: string, id: string) => {
      const took = await timed(async () => {
        const r = await execa(process.execPath, [cli, '--sysroot', sysroot, '--json', 'container', 'install', '--name', id, `${reg.host}/bench:1`], { env });
        const checkout = (JSON.parse(r.stdout) as { container: { checkout: string } }).container.checkout;
        await runDetached(checkout, `ah-${id}`);
        await waitUp();
      });
      await killRun(`ah-${id}`);
      await execa(process.execPath, [CLI, '--sysroot', sysroot, 'container', 'uninstall', id]);
      await execa(process.execPath, [CLI, '--sysroot', sysroot, 'cleanup', '--rollback']);
      await execa(process.execPath, [CLI, '--sysroot', sysroot, 'container', 'gc']);
      return took;
    };
    for (let i = 0; i < ROUNDS; i++) {
      t.atomhost.push(await installAndStart(CLI, `b${i}`));
      if (BASELINE_CLI) t.baseline.push(await installAndStart(BASELINE_CLI, `base${i}`));

      const oci = join(scratch.dir, `oci${i}`);
      const bundle = join(scratch.dir, `bundle${i}`);
      t.raw.push(
        await timed(async () => {
          await execa('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench:1`, `oci:${oci}:b`]);
          await execa('umoci', ['unpack', '--image', `${oci}:b`, bundle]);
          const cfg = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean }; linux: { namespaces: { type: string }[] } };
          cfg.process.terminal = false;
          cfg.linux.namespaces = cfg.linux.namespaces.filter((n) => n.type !== 'network');
          await writeFile(join(bundle, 'config.json'), JSON.stringify(cfg));
          await runDetached(bundle, `raw${i}`);
          await waitUp();
        }),
      );
      await killRun(`raw${i}`);
      await rm(oci, { recursive: true, force: true });
      await rm(bundle, { recursive: true, force: true });

      const proot = join(scratch.dir, `podman${i}`);
      const podman = ['--root', join(proot, 'root'), '--runroot', join(proot, 'run'), '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
      t.podman.push(
        await timed(async () => {
          await execa('podman', [...podman, 'run', '-d', '--network', 'host', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', '--tls-verify=false', '--name', `p${i}`, `${reg.host}/bench:1`]);
          await waitUp();
        }),
      );
      await execa('podman', [...podman, 'rm', '-f', '-t', '0', `p${i}`], { reject: false });
      await execa('podman', [...podman, 'system', 'reset', '-f'], { reject: false });
      await rm(proot, { recursive: true, force: true });
    }

    // Where an install's time goes, in process (what atomhostd runs): the pull into the
    // store, the checkout, and the revision that records the change (a deployment of the
    // same OS commit and its boot entry); and the CLI's own start-up.
    const host = await LocalHost.open(sysroot);
    const store = new ImageStore(host.sysroot);
    const parts = { pull: [] as number[], checkout: [] as number[], revision: [] as number[], origin: [] as number[], cli: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      const digest = { d: '' };
      parts.pull.push(await timed(async () => (digest.d = (await store.pull(`${reg.host}/bench:1`)).digest)));
      const co = join(scratch.dir, `co${i}`);
      parts.checkout.push(await timed(() => store.checkout(digest.d, co)));
      await rm(co, { recursive: true, force: true });
      parts.revision.push(await timed(() => host.commitRevision(`bench: record only ${i}`, (d) => d)));
      // The cheaper alternative's own cost: a revision named in the default deployment's
      // origin file, rewritten in place (no new deployment, no boot entry).
      const def = host.sysroot.deployments[0];
      parts.origin.push(await timed(() => host.sysroot.withLock(() => host.sysroot.writeOrigin(def.index, def.origin ?? ''))));
      parts.cli.push(await timed(() => execa(process.execPath, [CLI, '--version'])));
      await execa(process.execPath, [CLI, '--sysroot', sysroot, 'cleanup', '--rollback']);
      await store.gc(new Set());
    }
    host.sysroot.close();

    // Storage: install v1, then v2 whose big layer was rebuilt with 8 of its 384 files changed.
    await buildAndPush(reg.host, 'bench:2', image(files('app', 384, 8)));
    const objects = join(sysroot, 'ostree', 'repo', 'objects');
    await execa(process.execPath, [CLI, '--sysroot', sysroot, 'container', 'install', '--name', 's', `${reg.host}/bench:1`], { env });
    const ahBefore = await du(objects);
    await execa(process.execPath, [CLI, '--sysroot', sysroot, 'container', 'install', '--name', 's2', `${reg.host}/bench:2`], { env });
    const ahGrowth = (await du(objects)) - ahBefore;
    const proot = join(scratch.dir, 'podman-storage');
    const podman = ['--root', join(proot, 'root'), '--runroot', join(proot, 'run'), '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
    await execa('podman', [...podman, 'pull', '-q', '--tls-verify=false', `${reg.host}/bench:1`]);
    const pBefore = await du(join(proot, 'root'));
    await execa('podman', [...podman, 'pull', '-q', '--tls-verify=false', `${reg.host}/bench:2`]);
    const pGrowth = (await du(join(proot, 'root'))) - pBefore;
    await execa('podman', [...podman, 'system', 'reset', '-f'], { reject: false });

    return {
      name: `System containers (median of ${ROUNDS}; 51 MiB image in 3 layers, 769 files, local registry)`,
      rows: [
        compare('install + start: atomhost (+ runc run)', 's', median(t.atomhost), 'skopeo copy + umoci unpack + runc run', median(t.raw), '≤ 0.8×'),
        compare('install + start: atomhost (+ runc run)', 's', median(t.atomhost), 'podman run (pull included)', median(t.podman), '≤ 1.0×'),
        compare('second version, bytes added to the store', 'bytes', ahGrowth, "podman's storage", pGrowth, '≤ 0.10×'),
        compare('second version, bytes added to the store', 'bytes', ahGrowth, 'bytes of the 8 changed files', 8 * 64 * 1024, '≤ 1.2×'),
        ...(BASELINE_CLI ? [compare('install + start: this build', 's', median(t.atomhost), `the same with ${BASELINE_CLI}`, median(t.baseline), '—')] : []),
        compare('in process: pull into the store (fresh)', 's', median(parts.pull), 'install + start (CLI)', median(t.atomhost), '—'),
        compare('in process: checkout of the image', 's', median(parts.checkout), 'install + start (CLI)', median(t.atomhost), '—'),
        compare('in process: the revision recording the change (deployment + boot entry)', 's', median(parts.revision), 'install + start (CLI)', median(t.atomhost), '—'),
        compare('in process: rewriting the default deployment\'s origin instead', 's', median(parts.origin), 'install + start (CLI)', median(t.atomhost), '—'),
        compare('CLI start-up (atomhost --version)', 's', median(parts.cli), 'install + start (CLI)', median(t.atomhost), '—'),
      ],
      notes: [
        'atomhost runs its CLI as a process (Node.js start-up included); the big layer of v2 was rebuilt with 8 of 384 files changed',
        'the OSTree repo stores files once (content-addressed), so a rebuilt layer costs only its changed files; overlay storage keeps whole layers',
      ],
    };
  } finally {
    await reg.stop();
    await scratch.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printResult(await benchContainers());
}
