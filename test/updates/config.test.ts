// The update policy: drop-ins merged in lexical order (later keys win), and every invalid
// field refused naming its file, key and value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUpdatesConfig, parseDuration } from '../../core/updates/config.js';

async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-updates-cfg-'));
  try {
    for (const [n, t] of Object.entries(files)) await writeFile(join(dir, n), t);
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('no drop-ins: enabled, immediate, hourly, no graph or lock', async () => {
  const c = await loadUpdatesConfig('/nonexistent/atomhost-updates.d');
  assert.deepEqual([c.enabled, c.strategy, c.intervalMs, c.graph, c.fleetLock, c.files], [true, 'immediate', 3_600_000, null, null, []]);
});

test('drop-ins merge in lexical order: later keys win, mappings merge key by key, lists are replaced', async () => {
  await withDir(
    {
      '10-base.yaml': 'strategy: periodic\ninterval: 30m\nperiodic:\n  time_zone: Europe/Berlin\n  windows:\n    - { days: [Sat], start_time: "22:00", length_minutes: 60 }\nfleet_lock: { base_url: "http://127.0.0.1:1/", group: workers }\n',
      '20-site.yaml': 'periodic:\n  windows:\n    - { days: [Sun, Mon], start_time: "01:30", length_minutes: 90 }\nfleet_lock: { group: etcd }\nhooks:\n  pre_reboot:\n    - { argv: [/usr/bin/kubectl, drain, node1], timeout: 5m }\n',
      '30-off.yml': 'enabled: false\n',
      'README': 'not a drop-in',
    },
    async (dir) => {
      const c = await loadUpdatesConfig(dir);
      assert.equal(c.enabled, false);
      assert.equal(c.strategy, 'periodic');
      assert.equal(c.intervalMs, 30 * 60_000);
      assert.equal(c.periodic.timeZone, 'Europe/Berlin', 'kept from 10-base: the mapping merged');
      assert.deepEqual(c.periodic.windows, [{ days: ['Sun', 'Mon'], start: 90, lengthMinutes: 90 }], 'the list was replaced');
      assert.deepEqual(c.fleetLock, { baseUrl: 'http://127.0.0.1:1', group: 'etcd', tokenFile: null });
      assert.deepEqual(c.hooks.preReboot, [{ argv: ['/usr/bin/kubectl', 'drain', 'node1'], timeoutMs: 300_000 }]);
      assert.deepEqual(c.files.map((f) => f.slice(dir.length + 1)), ['10-base.yaml', '20-site.yaml', '30-off.yml']);
    },
  );
});

test('durations', () => {
  assert.equal(parseDuration('2h30m'), 9_000_000);
  assert.equal(parseDuration('500ms'), 500);
  for (const bad of ['', '10', '1.5h', '-1m', 'soon', 5]) assert.equal(parseDuration(bad), null, String(bad));
});

// Each: the drop-in text, then what the error must name (file is always checked).
const INVALID: [string, RegExp][] = [
  ['strategy: sometimes\n', /: strategy: "sometimes" must be immediate, periodic or fleet_lock/],
  ['enabled: "yes"\n', /: enabled: "yes" must be true or false/],
  ['interval: 5\n', /: interval: 5 must be a duration/],
  ['interval: 1s\n', /: interval: "1s" must be at least 10s/],
  ['jitter: lots\n', /: jitter: "lots" must be a duration/],
  ['colour: blue\n', /: colour: "blue" is not a known key/],
  ['strategy: periodic\n', /: strategy: "periodic" needs at least one window in periodic\.windows/],
  ['periodic: { time_zone: Mars/Olympus, windows: [] }\n', /: periodic\.time_zone: "Mars\/Olympus" is not an IANA time zone/],
  ['periodic: { windows: [{ days: [Sat, Caturday], start_time: "01:00", length_minutes: 5 }] }\n', /: periodic\.windows\[0\]\.days\[1\]: "Caturday" is not a day/],
  ['periodic: { windows: [{ days: [], start_time: "01:00", length_minutes: 5 }] }\n', /: periodic\.windows\[0\]\.days: \[\] must be a non-empty list/],
  ['periodic: { windows: [{ days: [Sat], start_time: "24:00", length_minutes: 5 }] }\n', /: periodic\.windows\[0\]\.start_time: "24:00" must be a 24-hour time HH:MM/],
  ['periodic: { windows: [{ days: [Sat], start_time: "1:00", length_minutes: 5 }] }\n', /: periodic\.windows\[0\]\.start_time: "1:00"/],
  ['periodic: { windows: [{ days: [Sat], start_time: "01:00", length_minutes: 0 }] }\n', /: periodic\.windows\[0\]\.length_minutes: 0 must be a whole number of minutes from 1 to 10080/],
  ['periodic: { windows: [{ days: [Sat], start_time: "01:00", length_minutes: 2.5 }] }\n', /length_minutes: 2\.5/],
  ['periodic: { windows: [{ days: [Sat], start_time: "01:00", length: 5 }] }\n', /: periodic\.windows\[0\]\.length: 5 is not a known key/],
  ['strategy: fleet_lock\n', /: strategy: "fleet_lock" needs fleet_lock\.base_url/],
  ['fleet_lock: { base_url: "ftp://x/" }\n', /: fleet_lock\.base_url: "ftp:\/\/x\/" must be an http or https URL/],
  ['fleet_lock: { base_url: "not a url" }\n', /: fleet_lock\.base_url: "not a url" is not a URL/],
  ['fleet_lock: { base_url: "http://x/", group: "a b" }\n', /: fleet_lock\.group: "a b" must match/],
  ['fleet_lock: { base_url: "http://x/", token_file: "relative/token" }\n', /: fleet_lock\.token_file: "relative\/token" must be an absolute path/],
  ['graph: { url: "http://x/" }\n', /: graph\.stream: undefined is required with graph\.url/],
  ['graph: { url: "http://x/?q=1", stream: stable }\n', /: graph\.url: "http:\/\/x\/\?q=1" is a base URL/],
  ['graph: { url: "http://x/", stream: stable, rollout_wariness: 1.5 }\n', /: graph\.rollout_wariness: 1\.5 must be a number from 0\.0/],
  ['graph: { url: "http://x/", stream: "../x" }\n', /: graph\.stream: "\.\.\/x" must match/],
  ['hooks: { pre_reboot: [{ argv: [] }] }\n', /: hooks\.pre_reboot\[0\]\.argv: \[\] must be a non-empty list of strings/],
  ['hooks: { pre_reboot: [{ argv: [kubectl, drain] }] }\n', /: hooks\.pre_reboot\[0\]\.argv\[0\]: "kubectl" must be an absolute path/],
  ['hooks: { post_healthy: [{ argv: [/bin/true], timeout: forever }] }\n', /: hooks\.post_healthy\[0\]\.timeout: "forever" must be a duration/],
  ['hooks: { post_healthy: "/bin/true" }\n', /: hooks\.post_healthy: "\/bin\/true" must be a list of hooks/],
  ['- just\n- a list\n', /: the document must be a mapping/],
  ['strategy: [unclosed\n', /00-bad\.yaml(:\d+)?: not valid YAML/],
];

test('every invalid field is refused naming the file, the key and the value', async () => {
  for (const [text, want] of INVALID) {
    await withDir({ '00-bad.yaml': text }, async (dir) => {
      await assert.rejects(loadUpdatesConfig(dir), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'AH_ERR_INVALID_ARGUMENT', text);
        assert.ok(err.message.startsWith(join(dir, '00-bad.yaml')), `${err.message} names the file`);
        assert.match(err.message, want, text);
        return true;
      });
    });
  }
});

test('an error names the drop-in that set the bad key, not the last one read', async () => {
  await withDir({ '10-a.yaml': 'strategy: sideways\n', '20-b.yaml': 'interval: 1h\n' }, async (dir) => {
    await assert.rejects(loadUpdatesConfig(dir), (err: Error) => err.message.startsWith(`${join(dir, '10-a.yaml')}: strategy:`));
  });
});
