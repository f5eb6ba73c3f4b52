// The health gate's settings, read from the environment here and nowhere else: its own
// module so that what needs a setting (the boot tries when a new default is written) does
// not import the gate.
import { DEFAULT_BOOT_TRIES } from './boot-counter.js';
import { InvalidArgumentError } from './errors.js';

/** Where the gate runs: after a boot (atomhost-health.service) or after a live change (a container verb). */
export type GatePhase = 'boot' | 'live';

export interface GateSettings {
  /**
   * How long a changed stack has to come up healthy. A boot gets longer than a live
   * change: after a reboot every unit starts cold (images read from disk, caches empty,
   * the units of the whole stack starting at once), while a live change restarts a few.
   */
  deadlineMs: Record<GatePhase, number>;
  /** A command probe or health.d script is killed with its process group after this. */
  probeTimeoutMs: number;
  /** An HTTP probe is abandoned after this. */
  httpTimeoutMs: number;
  /** Between two looks at the checks. */
  intervalMs: number;
  /** A unit must stay up this long after it first passes: a restart loop shows in that window. */
  settleMs: number;
  /** Callers who may not change the host get probe results at most this fresh (StackStatus). */
  statusProbeEveryMs: number;
  /**
   * Boots a new revision gets to pass its gate: GRUB's counter (boots that never reach
   * userspace) and the reconcile unit's count (boots that never finish the gate) alike.
   */
  bootTries: number;
}

export const GATE_DEFAULTS: Readonly<GateSettings> = Object.freeze({
  deadlineMs: Object.freeze({ boot: 120_000, live: 60_000 }),
  probeTimeoutMs: 10_000,
  httpTimeoutMs: 2_000,
  intervalMs: 500,
  settleMs: 2_000,
  statusProbeEveryMs: 10_000,
  bootTries: DEFAULT_BOOT_TRIES,
});

function msFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name}=${JSON.stringify(v)}: not a whole number of milliseconds`, { variable: name });
  return Number(v);
}

function triesFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.ATOMHOST_BOOT_TRIES;
  if (v === undefined || v === '') return undefined;
  // GRUB counts down by string comparison from 9 (core/boot-counter.ts).
  if (!/^[1-9]$/.test(v.trim())) throw new InvalidArgumentError(`ATOMHOST_BOOT_TRIES=${JSON.stringify(v)}: not a number of boots from 1 to 9`, { variable: 'ATOMHOST_BOOT_TRIES' });
  return Number(v);
}

/**
 * The gate's settings: the defaults above, and from the environment (atomhostd's unit
 * and the boot units read /etc/atomhost/atomhostd.env) ATOMHOST_HEALTH_DEADLINE_MS (the
 * deadline, boot and live alike), ATOMHOST_PROBE_TIMEOUT_MS and ATOMHOST_BOOT_TRIES.
 */
export function gateSettings(env: NodeJS.ProcessEnv = process.env): GateSettings {
  const deadline = msFromEnv(env, 'ATOMHOST_HEALTH_DEADLINE_MS');
  return {
    ...GATE_DEFAULTS,
    deadlineMs: deadline === undefined ? { ...GATE_DEFAULTS.deadlineMs } : { boot: deadline, live: deadline },
    probeTimeoutMs: msFromEnv(env, 'ATOMHOST_PROBE_TIMEOUT_MS') ?? GATE_DEFAULTS.probeTimeoutMs,
    bootTries: triesFromEnv(env) ?? GATE_DEFAULTS.bootTries,
  };
}

