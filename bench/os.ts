// Upgrade and rollback, side by side with ostree used directly, in one run.
//  - upgrade: `atomhost upgrade` vs `ostree pull` + `ostree admin deploy` (both as processes)
//  - rollback: `atomhost rollback` vs the same libostree calls from a minimal script
//    (Debian's ostree 2022.7 CLI has no rollback verb), as processes and in-process.
// BENCH_OS_BEFORE=/other/dist measures another build (e.g. main's) the same way in the same
// run, on a sysroot of its own, taking turns with this one.
import { mkdir } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { makeScratch } from '../sandbox/scratch.js';
import { LocalHost } from '../core/local-host.js';
import { compare, median, printResult, type BenchResult } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
// The bundle the launchers run (scripts/bundle.mjs), as a user's `atomhost` starts.
const CLI = join(here, '..', 'bin', 'atomhost.js');
const RAW_ROLLBACK = join(here, '..', '..', 'bench', 'rollback-raw.py');
const OS = 'benchos';
const REF = 'benchos/x86_64/stable';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
// A rollback needs no new version and takes milliseconds: more rounds steady its median on a loaded machine.
const RB_ROUNDS = ROUNDS * 3;
const RB_IN_ROUNDS = ROUNDS * 5;
const BEFORE = process.env.BENCH_OS_BEFORE;
/** The goals of issue #15 (atomhost ÷ the raw tool). */
const GOALS = { upgradeProcess: '≤ 1.6×', upgradeInProcess: '≤ 0.7×', rollbackProcess: '≤ 1.3×', rollbackInProcess: '≤ 1.2×' };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function benchOs(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-', 4096);
  try {
    const repo = join(scratch.dir, 'repo');
    const tree = join(scratch.dir, 'tree');
    await initArchiveRepo(repo);
    let version = 1;
    const publish = async () => {
      const v = `${version}.0`;
      // A ~48 MiB tree (shared filler) where each version changes a few small files.
      await buildOsTree(tree, { osname: OS, version: v, fillerBytes: 48 * 1024 * 1024, files: { 'usr/share/bench/VERSION': v, 'usr/share/bench/changelog': `changes of ${v}\n`.repeat(200) } });
      version++;
      return commitTree(repo, REF, tree, v);
    };
    await publish();
    const server = await serveDirectory(repo);
    const sysroots: Record<string, string> = { atomhost: join(scratch.dir, 'sr-atomhost'), ostree: join(scratch.dir, 'sr-ostree') };
    if (BEFORE) sysroots.before = join(scratch.dir, 'sr-before');
    const cliOf = (who: string) => (who === 'before' ? join(BEFORE!, 'bin', 'atomhost.js') : CLI);
    for (const sr of Object.values(sysroots)) {
      await mkdir(sr);
      await execa('ostree', ['admin', 'init-fs', sr]);
      await execa('ostree', ['admin', 'os-init', `--sysroot=${sr}`, OS]);
      await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${sr}/ostree/repo`, 'origin', server.url]);
    }
    await execa(process.execPath, [CLI, '--sysroot', sysroots.atomhost, 'rebase', `origin:${REF}`, '--os', OS]);
    if (BEFORE) await execa(process.execPath, [cliOf('before'), '--sysroot', sysroots.before, 'rebase', `origin:${REF}`, '--os', OS]);
    await execa('ostree', ['pull', `--repo=${sysroots.ostree}/ostree/repo`, 'origin', REF]);
    await execa('ostree', ['admin', 'deploy', `--sysroot=${sysroots.ostree}`, `--os=${OS}`, `origin:${REF}`]);

    const up = { atomhost: [] as number[], ostree: [] as number[], before: [] as number[] };
    const who = ['atomhost', 'ostree', ...(BEFORE ? ['before'] : [])] as ('atomhost' | 'ostree' | 'before')[];
    for (let i = 0; i < ROUNDS; i++) {
      await publish();
      // Rotate who goes first so that none always meets a warm page cache.
      const order = [...who.slice(i % who.length), ...who.slice(0, i % who.length)];
      for (const who of order) {
        if (who !== 'ostree') up[who].push(await timed(() => execa(process.execPath, [cliOf(who), '--sysroot', sysroots[who], 'upgrade'])));
        else
          up.ostree.push(
            await timed(async () => {
              await execa('ostree', ['pull', `--repo=${sysroots.ostree}/ostree/repo`, 'origin', REF]);
              await execa('ostree', ['admin', 'deploy', `--sysroot=${sysroots.ostree}`, `--os=${OS}`, `origin:${REF}`]);
            }),
          );
      }
    }
    // The same upgrade in process (what atomhostd runs), against the same raw steps.
    const host = await LocalHost.open(sysroots.atomhost);
    const hostBefore = BEFORE ? await ((await import(join(BEFORE, 'core', 'local-host.js'))) as { LocalHost: typeof LocalHost }).LocalHost.open(sysroots.before) : null;
    const upIn: number[] = [];
    const upInBefore: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await publish();
      const pair = [() => timed(() => host.upgrade()).then((t) => upIn.push(t)), ...(hostBefore ? [() => timed(() => hostBefore.upgrade()).then((t) => upInBefore.push(t))] : [])];
      for (const run of i % 2 ? pair.reverse() : pair) await run();
      await execa('ostree', ['pull', `--repo=${sysroots.ostree}/ostree/repo`, 'origin', REF]);
      await execa('ostree', ['admin', 'deploy', `--sysroot=${sysroots.ostree}`, `--os=${OS}`, `origin:${REF}`]);
    }
    await server.close();

    const rb = { atomhost: [] as number[], inproc: [] as number[], before: [] as number[], inprocBefore: [] as number[] };
    const rawProc: number[] = [];
    for (let i = 0; i < RB_ROUNDS; i++) {
      const runs = [
        async () => rb.atomhost.push(await timed(() => execa(process.execPath, [CLI, '--sysroot', sysroots.atomhost, 'rollback']))),
        async () => rawProc.push(await timed(() => execa('/usr/bin/python3', [RAW_ROLLBACK, sysroots.ostree, '1']))),
        ...(BEFORE ? [async () => rb.before.push(await timed(() => execa(process.execPath, [cliOf('before'), '--sysroot', sysroots.before, 'rollback'])))] : []),
      ];
      for (const run of [...runs.slice(i % runs.length), ...runs.slice(0, i % runs.length)]) await run();
    }
    // Warm-up: the first call compiles the code paths.
    await host.rollback();
    await hostBefore?.rollback();
    // The raw baseline stays loaded in one python process and takes one round per line, so its
    // rounds alternate with atomhost's instead of running in a block after them.
    const raw = rawRollbackRounds(sysroots.ostree);
    await raw.round(); // its warm-up
    const rawIn: number[] = [];
    for (let i = 0; i < RB_IN_ROUNDS; i++) {
      const runs = [
        async () => rb.inproc.push(await timed(() => host.rollback())),
        async () => rawIn.push(await raw.round()),
        ...(hostBefore ? [async () => rb.inprocBefore.push(await timed(() => hostBefore.rollback()))] : []),
      ];
      for (const run of [...runs.slice(i % runs.length), ...runs.slice(0, i % runs.length)]) await run();
    }
    await raw.close();
    const pyStart: number[] = [];
    const nodeStart: number[] = [];
    for (let i = 0; i < 3; i++) {
      pyStart.push(await timed(() => execa('/usr/bin/python3', ['-c', 'import gi; gi.require_version("OSTree","1.0"); from gi.repository import OSTree'])));
      nodeStart.push(await timed(() => execa(process.execPath, [CLI, '--version'])));
    }

    return {
      name: `OS upgrade and rollback (medians: upgrades of ${ROUNDS}, rollbacks of ${RB_ROUNDS} as processes and ${RB_IN_ROUNDS} in process; 48 MiB tree, a few files changed per version)`,
      rows: [
        compare('upgrade (process): atomhost upgrade', 's', median(up.atomhost), 'ostree pull + ostree admin deploy', median(up.ostree), GOALS.upgradeProcess),
        ...(BEFORE ? [compare('  the same, BENCH_OS_BEFORE build', 's', median(up.before), 'ostree pull + ostree admin deploy', median(up.ostree))] : []),
        compare('upgrade (in process): LocalHost.upgrade', 's', median(upIn), 'ostree pull + ostree admin deploy', median(up.ostree), GOALS.upgradeInProcess),
        ...(BEFORE ? [compare('  the same, BENCH_OS_BEFORE build', 's', median(upInBefore), 'ostree pull + ostree admin deploy', median(up.ostree))] : []),
        compare('rollback (process): atomhost rollback', 's', median(rb.atomhost), 'libostree write_deployments script', median(rawProc), GOALS.rollbackProcess),
        ...(BEFORE ? [compare('  the same, BENCH_OS_BEFORE build', 's', median(rb.before), 'libostree write_deployments script', median(rawProc))] : []),
        compare('rollback (in process): LocalHost.rollback', 's', median(rb.inproc), 'libostree write_deployments in process', median(rawIn), GOALS.rollbackInProcess),
        ...(BEFORE ? [compare('  the same, BENCH_OS_BEFORE build', 's', median(rb.inprocBefore), 'libostree write_deployments in process', median(rawIn))] : []),
      ],
      notes: [
        ...(BEFORE ? [`before: ${BEFORE}`] : []),
        `process start-up alone (median of 3): atomhost --version ${(median(nodeStart) * 1000).toFixed(0)} ms (Node.js), python3 + OSTree bindings ${(median(pyStart) * 1000).toFixed(0)} ms`,
        'sysroots live on their own tmpfs; the repo is served over HTTP on 127.0.0.1',
      ],
    };
  } finally {
    await scratch.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printResult(await benchOs());
}

/** The python3-gi baseline kept running: each round() is one rollback, timed inside python. */
function rawRollbackRounds(sysroot: string): { round(): Promise<number>; close(): Promise<void> } {
  const child = execa('/usr/bin/python3', [RAW_ROLLBACK, sysroot, '-'], { stdin: 'pipe', stdout: 'pipe', buffer: false });
  const waiting: ((line: string) => void)[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  return {
    round: () =>
      new Promise<number>((resolve, reject) => {
        child.catch(reject);
        waiting.push((line) => resolve(Number(line)));
        child.stdin!.write('\n');
      }),
    close: async () => {
      child.stdin!.end();
      await child;
    },
  };
}
