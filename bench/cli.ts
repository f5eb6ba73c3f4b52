// CLI start-up, side by side with the floor it is measured against, in one run (medians):
//  - `atomhost --version` and `--help` vs `node -e 0` (Node's own start-up)
//  - `atomhost --sysroot S status` vs `ostree admin status --sysroot=S` on a tmpfs sysroot
//  - `atomhost status` with no atomhostd to answer: the daemon path's load cost up to the
//    failed connect (bench/daemon.ts times the real call in a test host)
// BENCH_CLI=/other/dist/bin/atomhost.js measures another build; BENCH_CLI_BEFORE=/main/dist/cli/main.js
// adds that build to every alternation (a before/after under the same load).
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { makeScratch } from '../sandbox/scratch.js';
import { compare, median, printResult, type BenchResult, type BenchRow } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
// The bundle (scripts/build.sh), as installed; dist/cli/main.js is the unbundled build.
const CLI = process.env.BENCH_CLI ?? join(here, '..', 'bin', 'atomhost.js');
const BEFORE = process.env.BENCH_CLI_BEFORE;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const OS = 'benchos';
const REF = 'benchos/x86_64/stable';

/** Wall time of one run, in seconds; a failure is an error unless expected. */
function once(cmd: string, args: string[], env: NodeJS.ProcessEnv, mayFail: boolean): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0 && !mayFail) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return s;
}

type Cmd = [string, string[]];

/**
 * The environment of every measured start: without NODE_EXTRA_CA_CERTS, which some machines
 * set globally. With it every node process, `node -e 0` included, parses a CA bundle at
 * start (about 38 ms of CPU on the 2-core bench machine: `node -e 0` 56 ms user against 18 ms
 * without it), which flattered the ratios and is not what a host's units see.
 */
const { NODE_EXTRA_CA_CERTS: _extraCa, ...BENCH_ENV } = process.env;

/**
 * Medians of atomhost's command (`args` after the CLI), of the same with BENCH_CLI_BEFORE's
 * build, and of the baseline, run in alternation after a warm-up, as hyperfine side by side.
 */
function sideBySide(args: string[], baselines: Cmd[], opts: { env?: NodeJS.ProcessEnv; mayFail?: boolean } = {}): { now: number; before?: number; base: number[] } {
  const env = opts.env ?? BENCH_ENV;
  const nb = baselines.length;
  const cmds: Cmd[] = [[process.execPath, [CLI, ...args]], ...baselines, ...(BEFORE ? [[process.execPath, [BEFORE, ...args]] as Cmd] : [])];
  const times: number[][] = cmds.map(() => []);
  for (let i = -2; i < ROUNDS; i++) {
    cmds.forEach(([cmd, a], k) => {
      const t = once(cmd, a, env, (k === 0 || k > nb) && (opts.mayFail ?? false));
      if (i >= 0) times[k].push(t);
    });
  }
  return { now: median(times[0]), base: times.slice(1, nb + 1).map(median), before: BEFORE ? median(times[nb + 1]) : undefined };
}

/** A row per baseline for this build, then the same for BENCH_CLI_BEFORE's. */
function rows(label: string, r: { now: number; before?: number; base: number[] }, baseLabels: string[], goals: (string | undefined)[] = []): BenchRow[] {
  const out = baseLabels.map((b, k) => compare(k ? `  the same` : label, 's', r.now, b, r.base[k], goals[k]));
  if (r.before !== undefined) out.push(...baseLabels.map((b, k) => compare(`  BENCH_CLI_BEFORE's build`, 's', r.before!, b, r.base[k])));
  return out;
}

export async function benchCli(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-cli-', 512);
  try {
    const repo = join(scratch.dir, 'repo');
    const tree = join(scratch.dir, 'tree');
    const sr = join(scratch.dir, 'sysroot');
    await initArchiveRepo(repo);
    await buildOsTree(tree, { osname: OS, version: '1.0' });
    await commitTree(repo, REF, tree, '1.0');
    await mkdir(sr);
    await execa('ostree', ['admin', 'init-fs', sr]);
    await execa('ostree', ['admin', 'os-init', `--sysroot=${sr}`, OS]);
    await execa('ostree', ['pull-local', `--repo=${sr}/ostree/repo`, repo, REF]);
    await execa('ostree', ['admin', 'deploy', `--sysroot=${sr}`, `--os=${OS}`, REF]);

    const floor: Cmd = [process.execPath, ['-e', '0']];
    // No system bus here: the connect fails at once, after the daemon path is loaded.
    const noBus = { ...BENCH_ENV, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(scratch.dir, 'no-bus')}` };
    return {
      name: `CLI start-up (${ROUNDS} runs each, medians, alternating)`,
      rows: [
        ...rows('atomhost --version', sideBySide(['--version'], [floor]), ['node -e 0'], ['≤ 1.15×']),
        ...rows('atomhost --help', sideBySide(['--help'], [floor]), ['node -e 0']),
        ...rows('atomhost --sysroot S status (tmpfs)', sideBySide(['--sysroot', sr, 'status'], [floor, ['ostree', ['admin', 'status', `--sysroot=${sr}`]]]), ['node -e 0', 'ostree admin status'], ['≤ 1.4×']),
        ...rows('atomhost status, no daemon (load + connect)', sideBySide(['status'], [floor], { env: noBus, mayFail: true }), ['node -e 0']),
      ],
      notes: [`CLI: ${CLI}${BEFORE ? `; before: ${BEFORE}` : ''}`],
    };
  } finally {
    await scratch.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printResult(await benchCli());
}
