// A failed unit's last journal lines, for error reports and supervision events.
import type { UnitManager } from '../core/unit-manager.js';

/** systemd's own lines about a unit ("x.service: Main process exited…", "Started …"). */
const fromSystemd = (unit: string, line: string) => line.startsWith(`${unit}:`) || /^(Started|Starting|Stopped|Stopping|Failed to start|Scheduled restart) /.test(line);

/**
 * The lines that say why a unit failed: the runtime's own (runc's "error mounting …").
 * journald reads a service's output from its stream on its own schedule, so when ExecStart
 * fails at once systemd has already reported the unit failed while those lines are not in
 * the journal yet, and a reader right then gets nothing (or systemd's lines alone): read
 * again until the unit's own output is there, for up to 3 s.
 */
export async function failureLines(units: Pick<UnitManager, 'journal'>, unit: string, lines = 15): Promise<string[]> {
  let out: string[] = [];
  for (let i = 0; i < 15; i++) {
    out = (await units.journal?.(unit, lines).catch(() => [] as string[])) ?? [];
    if (out.some((l) => !fromSystemd(unit, l))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return out;
}
