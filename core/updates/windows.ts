// Periodic maintenance windows, in the wall-clock time of an IANA time zone (Intl).
// A window is "days at HH:MM for N minutes" and may cross midnight (and the end of the
// week). Windows are wall-clock: on a DST change day a window that spans the change is
// an hour shorter or longer in real time, as a person reading the local clock expects.
import { DAYS, type Window } from './config.js';

const WEEK = 7 * 24 * 60;
const formats = new Map<string, Intl.DateTimeFormat>();

/** Minutes since Sunday 00:00 of the local week in `timeZone`, at `at`. */
export function minuteOfWeek(at: Date, timeZone: string): number {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formats.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  const day = DAYS.indexOf(parts.weekday as (typeof DAYS)[number]);
  return day * 24 * 60 + Number(parts.hour) * 60 + Number(parts.minute);
}

/** Is `at` inside one of the windows? */
export function inWindow(windows: Window[], timeZone: string, at: Date): boolean {
  const now = minuteOfWeek(at, timeZone);
  return windows.some((w) => w.days.some((d) => (now - (DAYS.indexOf(d) * 24 * 60 + w.start) + WEEK) % WEEK < w.lengthMinutes));
}

/** The next instant (to the minute) a window opens after `at`, or null without windows. Scans at most a week. */
export function nextWindow(windows: Window[], timeZone: string, at: Date): Date | null {
  if (!windows.length) return null;
  const start = Math.floor(at.getTime() / 60_000 + 1) * 60_000;
  for (let t = start; t <= start + (WEEK + 120) * 60_000; t += 60_000) if (inWindow(windows, timeZone, new Date(t))) return new Date(t);
  return null;
}
