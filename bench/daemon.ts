// atomhostd in a test host (real systemd, system bus): idle RSS after start and after
// 100 status calls; `atomhost status` through the daemon against `ostree admin status` on
// the same sysroot, and the bare D-Bus round trip (busctl) — p50 and p99, one run.
import { join } from 'node:path';
import { TestHost } from '../sandbox/testhost/testhost.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { makeScratch } from '../sandbox/scratch.js';
import { compare, printResult, type BenchResult, type BenchRow } from './report.js';

const N = Number(process.env.BENCH_ROUNDS ?? 30);
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
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await rss();
    // Timed inside the host, so that entering its namespaces is not counted.
    const time = async (cmd: string) => {
      const r = await th.sh(`for i in $(seq ${N}); do s=$(date +%s%N); ${cmd} > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); done`);
      return r.stdout.split('\n').filter(Boolean).map((us) => Number(us) / 1e6);
    };
    const cli = await time('atomhost status');
    const ostree = await time(`ostree admin status --sysroot=${SYSROOT}`);
    const busctl = await time('busctl call io.atomhost.Agent1 /io/atomhost/Agent1 io.atomhost.Agent1 GetStatus');
    await th.sh('for i in $(seq 100); do busctl call io.atomhost.Agent1 /io/atomhost/Agent1 io.atomhost.Agent1 GetStatus > /dev/null; done');
    const after = await rss();
    const rows: BenchRow[] = [
      { label: 'atomhostd RSS, idle after start', value: idle, unit: 'MiB', goal: '≤ 60 MiB' },
      { label: 'atomhostd RSS after 100 status calls', value: after, unit: 'MiB', goal: '≤ 60 MiB' },
      compare('atomhost status via daemon, p50', 's', pct(cli, 50), 'ostree admin status p50', pct(ostree, 50), '≤ 20 ms'),
      compare('atomhost status via daemon, p99', 's', pct(cli, 99), 'ostree admin status p99', pct(ostree, 99)),
      compare('D-Bus GetStatus round trip (busctl), p50', 's', pct(busctl, 50), 'ostree admin status p50', pct(ostree, 50), '≤ 20 ms'),
    ];
    return {
      name: `atomhostd (test host; ${N} calls each)`,
      rows,
      notes: ['`atomhost status` includes the CLI process start-up (Node.js); the busctl row is the daemon side of the call'],
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
