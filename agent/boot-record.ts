// What the boot units decided this boot, for atomhostd's metrics (agent/metrics.ts):
// `atomhostd --reconcile` and `--gate` run in processes of their own and are gone before
// a scrape, so they leave their decision in a file on /run (this boot's only). Kept apart
// from agent/metrics.ts so that the boot units do not load prom-client.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { atomicWriteFile } from '../core/atomic-write.js';

/** On /run: this boot's decisions and nothing older. */
export const BOOT_GATE_FILE = '/run/atomhost/boot-gate.json';

export type BootStep = 'reconcile' | 'gate';
interface BootStepResult {
  outcome: string;
  at: string;
}

/** Records a boot unit's decision for the daemon's metrics; never fails the unit. */
export async function recordBootStep(step: BootStep, outcome: string, file = BOOT_GATE_FILE): Promise<void> {
  try {
    const all = await readBootSteps(file);
    all[step] = { outcome, at: new Date().toISOString() };
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await atomicWriteFile(file, `${JSON.stringify(all)}\n`);
  } catch {
    // Metrics are not worth a failed boot step.
  }
}

export async function readBootSteps(file: string): Promise<Partial<Record<BootStep, BootStepResult>>> {
  try {
    const j = JSON.parse(await readFile(file, 'utf8')) as Record<string, BootStepResult>;
    const out: Partial<Record<BootStep, BootStepResult>> = {};
    for (const step of ['reconcile', 'gate'] as const) {
      const r = j[step];
      if (r && typeof r.outcome === 'string' && typeof r.at === 'string') out[step] = { outcome: r.outcome, at: r.at };
    }
    return out;
  } catch {
    return {};
  }
}

