// `npm run bench`: every benchmark in one run, each side by side with the raw tools.
// BENCH_ONLY=os,containers,... picks some.
import { printResult, type BenchResult } from './report.js';

const benches: Record<string, () => Promise<BenchResult>> = {
  os: async () => (await import('./os.js')).benchOs(),
  containers: async () => (await import('./containers.js')).benchContainers(),
  daemon: async () => (await import('./daemon.js')).benchDaemon(),
  kickstart: async () => (await import('./kickstart.js')).benchKickstart(),
  health: async () => (await import('./health.js')).benchHealth(),
  fleetlock: async () => (await import('./fleetlock.js')).benchFleetlock(),
  history: async () => (await import('./history.js')).benchHistory(),
  cli: async () => (await import('./cli.js')).benchCli(),
  // Not in the default run (about 15 minutes of qemu): BENCH_ONLY=vm.
  vm: async () => (await import('./vm.js')).benchVm(),
};
const DEFAULT_SKIP = ['vm'];

const only = process.env.BENCH_ONLY?.split(',');
const results: BenchResult[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (only ? !only.includes(name) : DEFAULT_SKIP.includes(name)) continue;
  try {
    const r = await run();
    printResult(r);
    results.push(r);
  } catch (err) {
    console.error(`bench ${name} failed: ${err instanceof Error ? err.message : err}`);
    process.exitCode = 1;
  }
}
if (process.env.BENCH_JSON) {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
}
