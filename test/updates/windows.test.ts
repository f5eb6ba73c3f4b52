// Maintenance windows in IANA time zones: several windows, across midnight and the end
// of the week, and on the days the clocks change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inWindow, minuteOfWeek, nextWindow } from '../../core/updates/windows.js';
import type { Window } from '../../core/updates/config.js';

const at = (iso: string) => new Date(iso);

test('local wall-clock time in a zone', () => {
  // 2026-11-25 is a Wednesday; 10:00Z is 11:00 in Berlin (CET) and 05:00 in New York (EST).
  assert.equal(minuteOfWeek(at('2026-11-25T10:00:00Z'), 'Europe/Berlin'), 3 * 1440 + 11 * 60);
  assert.equal(minuteOfWeek(at('2026-11-25T10:00:00Z'), 'America/New_York'), 3 * 1440 + 5 * 60);
  assert.equal(minuteOfWeek(at('2026-11-25T10:00:00Z'), 'Asia/Kolkata'), 3 * 1440 + 15 * 60 + 30);
});

test('a window across midnight, and one across the end of the week', () => {
  const w: Window[] = [{ days: ['Sat'], start: 23 * 60, lengthMinutes: 120 }];
  assert.equal(inWindow(w, 'UTC', at('2026-11-28T23:30:00Z')), true, 'Saturday 23:30');
  assert.equal(inWindow(w, 'UTC', at('2026-11-29T00:59:00Z')), true, 'Sunday 00:59, after midnight');
  assert.equal(inWindow(w, 'UTC', at('2026-11-29T01:00:00Z')), false, 'the end is exclusive');
  assert.equal(inWindow(w, 'UTC', at('2026-11-28T22:59:00Z')), false);
  assert.equal(inWindow(w, 'UTC', at('2026-11-21T23:10:00Z')), true, 'every Saturday');
  assert.equal(inWindow(w, 'UTC', at('2026-11-27T23:30:00Z')), false, 'not Friday');
});

test('several windows and several days; the zone decides', () => {
  const w: Window[] = [
    { days: ['Mon', 'Wed'], start: 2 * 60, lengthMinutes: 30 },
    { days: ['Wed'], start: 11 * 60, lengthMinutes: 15 },
  ];
  assert.equal(inWindow(w, 'Europe/Berlin', at('2026-11-25T10:05:00Z')), true, 'Wednesday 11:05 in Berlin: the second window');
  assert.equal(inWindow(w, 'UTC', at('2026-11-25T10:05:00Z')), false, 'the same instant is 10:05 in UTC');
  assert.equal(inWindow(w, 'Europe/Berlin', at('2026-11-23T01:10:00Z')), true, 'Monday 02:10 in Berlin');
  assert.equal(inWindow(w, 'Europe/Berlin', at('2026-11-24T01:10:00Z')), false, 'not Tuesday');
});

test('DST: a window spanning the spring-forward hour is shorter in real time; fall-back longer', () => {
  // New York springs forward on Sunday 2026-03-08 at 02:00 EST (07:00Z) to 03:00 EDT.
  const w: Window[] = [{ days: ['Sun'], start: 90, lengthMinutes: 60 }]; // 01:30–02:30 local
  assert.equal(inWindow(w, 'America/New_York', at('2026-03-08T06:45:00Z')), true, '01:45 EST');
  assert.equal(inWindow(w, 'America/New_York', at('2026-03-08T06:59:00Z')), true, '01:59 EST');
  assert.equal(inWindow(w, 'America/New_York', at('2026-03-08T07:00:00Z')), false, '03:00 EDT: 02:00–02:30 never happened');
  // It falls back on Sunday 2026-11-01 at 02:00 EDT (06:00Z) to 01:00 EST: 01:30 comes twice.
  assert.equal(inWindow(w, 'America/New_York', at('2026-11-01T05:45:00Z')), true, '01:45 EDT');
  assert.equal(inWindow(w, 'America/New_York', at('2026-11-01T06:15:00Z')), false, '01:15 EST, before the window again');
  assert.equal(inWindow(w, 'America/New_York', at('2026-11-01T06:45:00Z')), true, '01:45 EST, the window again');
  assert.equal(inWindow(w, 'America/New_York', at('2026-11-01T07:30:00Z')), false, '02:30 EST');
});

test('the next window opens at the right instant, in the zone', () => {
  const w: Window[] = [{ days: ['Sat'], start: 22 * 60, lengthMinutes: 60 }];
  assert.equal(nextWindow(w, 'Europe/Berlin', at('2026-11-25T10:00:00Z'))?.toISOString(), '2026-11-28T21:00:00.000Z');
  assert.equal(nextWindow([], 'UTC', at('2026-11-25T10:00:00Z')), null);
});
