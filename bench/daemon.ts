// atomhostd in a test host (real systemd, system bus): idle RSS after start and after
// 1000 status calls; `atomhost status` through the daemon against `ostree admin status` and
// `node -e 0` on the same sysroot, and the bare D-Bus round trip (busctl) — p50 and p99, one
// run. BENCH_DAEMON_BEFORE=/other/dist measures that build too (its cli/main.js and
// agent/main.js, unbundled; or, given a bundle directory such as /other/dist/bin, its
// atomhost.js and atomhostd.js), in the same host, after this one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestHost } from '../sandbox/testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { makeScratch } from '../sandbox/scratch.js';
import { compare, printResult, type BenchResult, type BenchRow } from './report.js';

const N = Number(process.env.BENCH_ROUNDS ?? 30);
const CALLS = Number(process.env.BENCH_DAEMON_CALLS ?? 1000);
const BEFORE = process.env.BENCH_DAEMON_BEFORE;
const SYSROOT = '/var/lib/atomhost-bench/sysroot';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export async function benchDaemon(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-d-');
  const repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await buildOsTree(join(scratch.dir, 'tree'), { osname: 'benchos', version: '1' });
  await commitTree(repo, 'benchos/stable', join(scratch.dir, 'tree'), '1');
  const server = await serveDirectory(repo);
  const th = await TestHost.boot();
  try {
    const setup = await th.sh(`set -e; mkdir -p /var/lib/atomhost-bench; mount -t tmpfs tmpfs /var/lib/atomhost-bench; mkdir -p ${SYSROOT};
      ostree admin init-fs ${SYSROOT}; ostree admin os-init --sysroot=${SYSROOT} benchos;
      ostree remote add --no-gpg-verify --repo=${SYSROOT}/ostree/repo origin ${server.url};
      atomhost --sysroot ${SYSROOT} rebase origin:benchos/stable --os benchos;
      mkdir -p /etc/atomhost; echo ATOMHOST_SYSROOT=${SYSROOT} > /etc/atomhost/atomhostd.env; atomhost status > /dev/null`);
    if (setup.exitCode !== 0) throw new Error(setup.stderr);
    const rss = async () => {
      const r = await th.sh('grep VmRSS /proc/$(systemctl show -p MainPID --value atomhostd)/status');
      return Number(/(\d+)/.exec(r.stdout)?.[1] ?? 0) / 1024;
    };
    // Timed inside the host, so that entering its namespaces is not counted.
    const time = async (cmd: string) => {
      const r = await th.sh(`for i in $(seq ${N}); do s=$(date +%s%N); ${cmd} > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); done`);
      return r.stdout.split('\n').filter(Boolean).map((us) => Number(us) / 1e6);
    };
    const busctl = 'busctl call io.atomhost.Agent1 /io/atomhost/Agent1 io.atomhost.Agent1 GetStatus';
    /** One build: a fresh daemon (D-Bus activated by the first call), its RSS and timings. */
    const measure = async () => {
      const r = await th.sh('systemctl stop atomhostd; atomhost status > /dev/null');
      if (r.exitCode !== 0) throw new Error(r.stderr);
      await new Promise((res) => setTimeout(res, 1000));
      const idle = await rss();
      const cli = await time('atomhost status');
      const floor = await time('node -e 0');
      const ostree = await time(`ostree admin status --sysroot=${SYSROOT}`);
      const bus = await time(busctl);
      await th.sh(`for i in $(seq ${CALLS}); do ${busctl} > /dev/null; done`);
      return { idle, after: await rss(), cli, floor, ostree, bus };
    };
    const report = (m: Awaited<ReturnType<typeof measure>>, tag: string): BenchRow[] => [
      { label: `atomhostd RSS, idle after start${tag}`, value: m.idle, unit: 'MiB', goal: tag ? undefined : '≤ 50 MiB' },
      { label: `atomhostd RSS after ${CALLS} status calls${tag}`, value: m.after, unit: 'MiB', goal: tag ? undefined : '≤ 55 MiB' },
      compare(`atomhost status via daemon, p50${tag}`, 's', pct(m.cli, 50), 'node -e 0 p50', pct(m.floor, 50), tag ? undefined : '≤ 1.3×'),
      compare('  the same', 's', pct(m.cli, 50), 'ostree admin status p50', pct(m.ostree, 50)),
      compare(`atomhost status via daemon, p99${tag}`, 's', pct(m.cli, 99), 'ostree admin status p99', pct(m.ostree, 99)),
      compare(`D-Bus GetStatus round trip (busctl), p50${tag}`, 's', pct(m.bus, 50), 'ostree admin status p50', pct(m.ostree, 50), tag ? undefined : '≤ 20 ms'),
    ];
    const rows = report(await measure(), '');
    if (BEFORE) {
      // The same host and sysroot, the other build's entry points behind the same commands.
      // A directory with atomhost.js (a bundle, as dist/bin) is run as the launchers run the bundle.
      const bundle = existsSync(join(BEFORE, 'atomhost.js'));
      const w = (f: string, js: string, flags = '') => `printf '#!/bin/sh\\nexec %s ${flags}%s "$@"\\n' "$(command -v node)" '${join(BEFORE, js)}' > /usr/local/bin/${f}`;
      const r = await th.sh(bundle ? `set -e; ${w('atomhost', 'atomhost.js')}; ${w('atomhostd', 'atomhostd.js', '--max-semi-space-size=1 ')}` : `set -e; ${w('atomhost', 'cli/main.js')}; ${w('atomhostd', 'agent/main.js')}`);
      if (r.exitCode !== 0) throw new Error(r.stderr);
      rows.push(...report(await measure(), ' (before)'));
    }
    return {
      name: `atomhostd (test host; ${N} calls each)`,
      rows,
      notes: ['`atomhost status` includes the CLI process start-up (Node.js); the busctl row is the daemon side of the call', ...(BEFORE ? [`before: ${BEFORE}`] : [])],
    };
  } finally {
    await th.shutdown();
    await server.close();
    await scratch.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printResult(await benchDaemon());
}
