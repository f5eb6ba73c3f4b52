// atomhostd's Prometheus metrics in a test host (real systemd as PID 1, the system bus,
// runc, a local registry): the daemon serves /metrics on 127.0.0.1:PORT (from
// atomhostd.env) and on its root-only socket; real transactions (an upgrade, a rollback,
// a failed deploy) and real live gates (a healthy container install, a broken one that
// falls back) move the counters, the histogram and the revision gauge. Bad listen values
// are refused naming the flag or variable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildAndPush, freePort, type Registry } from '../containers/fixtures.js';
import { prepareDiskHost, type DiskHost } from '../helpers/disk-host.js';
import type { HostStatus } from '../../core/host-api.js';

const DAEMON = new URL('../../agent/main.js', import.meta.url).pathname;
const INSIDE = '/var/lib/atomhost-metrics-test';
let th: TestHost;
let fx: DiskHost;
let reg: Registry;
const ports = { metrics: 0, web: 0, dead: 0 };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as a scraper reads it: one sample per line that is not a comment. */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(l);
      assert.ok(m, `a sample line: ${l}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

async function scrape(): Promise<{ samples: Sample[]; text: string; type: string | null }> {
  const r = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(r.status, 200);
  const text = await r.text();
  return { samples: parse(text), text, type: r.headers.get('content-type') };
}

/** The value of the one sample with this name and these labels (0 when there is none, as for a counter never moved). */
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `one ${name} ${JSON.stringify(labels)}: ${JSON.stringify(found)}`);
  return found[0]?.value ?? 0;
};

const atomhost = (...args: string[]) => th.exec('atomhost', args);

before(async () => {
  if (process.getuid?.() !== 0) return;
  fx = await prepareDiskHost('atomhost-metrics-', { inside: INSIDE });
  reg = fx.reg;
  ports.metrics = await freePort();
  ports.web = await freePort();
  ports.dead = await freePort(); // nothing listens there: the broken container's probe fails
  await buildAndPush(reg.host, 'web:1', { layers: [{ busybox: true, files: { 'www/index.html': 'web\n' } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${ports.web}`, '-h', '/www'] });
  await buildAndPush(reg.host, 'broken:1', { layers: [{ busybox: true }], cmd: ['/bin/sleep', '600'] });
  th = await fx.boot({
    enable: ['atomhost-reconcile.service', 'atomhost-health.service'],
    agentEnv: { ATOMHOST_INSECURE_REGISTRIES: reg.host, ATOMHOST_HEALTH_DEADLINE_MS: '8000', ATOMHOST_METRICS_LISTEN: `127.0.0.1:${ports.metrics}` },
  });
  // The boot gate marks 1.0 healthy (the fallback target of the broken install below).
  for (let i = 0; i < 80 && (await th.exec('systemctl', ['is-active', 'atomhost-health.service'])).stdout.trim() === 'activating'; i++) await new Promise((r) => setTimeout(r, 250));
});

after(async () => {
  await fx?.dispose(th, { journalLines: 15 });
});

test('served on 127.0.0.1 and on a root-only socket: the revision, deployments, update state and process metrics', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const st = await atomhost('status', '--json'); // starts atomhostd by D-Bus activation
  assert.equal(st.exitCode, 0, st.stderr);
  const status = JSON.parse(st.stdout) as HostStatus;
  const { samples, type } = await scrape();
  assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
  const def = samples.filter((s) => s.name === 'atomhost_revision_info' && s.labels.role === 'default');
  assert.deepEqual(def.map((s) => [s.labels.revision, s.labels.version, s.labels.state, s.value]), [[status.spec.revision, '1.0', 'healthy', 1]]);
  assert.match(status.spec.revision ?? '', /^[0-9a-f]{64}$/);
  assert.equal(value(samples, 'atomhost_deployments', { kind: 'all' }), 1);
  // The update agent's state, one-hot: no policy in the test host.
  const states = samples.filter((s) => s.name === 'atomhost_update_state');
  assert.equal(states.filter((s) => s.value === 1).length, 1, JSON.stringify(states));
  assert.equal(states.find((s) => s.value === 1)?.labels.state, status.status.updates?.state);
  // The boot units ran in processes of their own before the daemon: their decisions this boot.
  assert.equal(value(samples, 'atomhost_boot_gate_result', { step: 'gate', outcome: 'healthy' }), 1, 'atomhost-health.service passed 1.0');
  assert.equal(samples.filter((x) => x.name === 'atomhost_boot_gate_result' && x.labels.step === 'reconcile').length, 1);
  assert.ok(Math.abs(value(samples, 'atomhost_boot_gate_timestamp_seconds', { step: 'gate' }) - Date.now() / 1000) < 300);
  assert.ok(value(samples, 'process_cpu_seconds_total') > 0, 'prom-client\'s process metrics are in the same registry');
  assert.ok(value(samples, 'nodejs_heap_size_used_bytes') > 0);

  const other = await fetch(`http://127.0.0.1:${ports.metrics}/status`);
  assert.equal(other.status, 404);
  const post = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`, { method: 'POST' });
  assert.equal(post.status, 405);

  assert.equal((await th.exec('stat', ['-c', '%a %U', '/run/atomhost/metrics.sock'])).stdout.trim(), '600 root');
  const root = await th.exec('curl', ['-sf', '--unix-socket', '/run/atomhost/metrics.sock', 'http://localhost/metrics']);
  assert.equal(root.exitCode, 0, root.stderr);
  assert.match(root.stdout, /^atomhost_revision_info\{role="default",revision="[0-9a-f]{64}",version="1\.0",state="healthy"\} 1$/m);
  const nobody = await th.exec('curl', ['-sf', '--unix-socket', '/run/atomhost/metrics.sock', 'http://localhost/metrics'], { user: '65534' });
  assert.notEqual(nobody.exitCode, 0, 'another user cannot read the socket');
  assert.equal(nobody.stdout, '');
});

test('an update check of the update agent: its result, its time and its state', async (t) => {
  if (!requireRoot(t)) return;
  // Only 1.0 is published: the check finds nothing. The policy goes again at once, so that
  // the agent's timer never takes the 2.0 published below.
  await th.sh(`mkdir -p /etc/atomhost/updates.d && printf 'strategy: immediate\\n' > /etc/atomhost/updates.d/50-test.yaml`);
  const r = await atomhost('--json', 'updates', 'check');
  await th.sh('rm -f /etc/atomhost/updates.d/50-test.yaml');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { state: string }).state, 'steady', r.stdout);
  const { samples } = await scrape();
  assert.equal(value(samples, 'atomhost_update_checks_total', { result: 'steady' }), 1);
  assert.equal(value(samples, 'atomhost_update_state', { state: 'steady' }), 1);
  assert.equal(value(samples, 'atomhost_update_paused'), 0);
  assert.ok(Math.abs(value(samples, 'atomhost_update_last_check_timestamp_seconds') - Date.now() / 1000) < 120);
});

test('live gates: a healthy container install counts as healthy; a broken one falls back live and counts a fallback', async (t) => {
  if (!requireRoot(t)) return;
  const was = (await scrape()).samples;
  let r = await atomhost('container', 'install', '--role', 'kubelet', '--probe-http', `http://127.0.0.1:${ports.web}/index.html`, `${reg.host}/web:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  let s = (await scrape()).samples;
  assert.equal(value(s, 'atomhost_gate_results_total', { phase: 'live', outcome: 'healthy' }), value(was, 'atomhost_gate_results_total', { phase: 'live', outcome: 'healthy' }) + 1);
  assert.equal(value(s, 'atomhost_transactions_total', { kind: 'container-install', result: 'success' }), 1);
  const rev = s.find((x) => x.name === 'atomhost_revision_info' && x.labels.role === 'default');
  assert.equal(rev?.labels.state, 'healthy');

  r = await atomhost('container', 'install', '--role', 'runtime', '--probe-http', `http://127.0.0.1:${ports.dead}/`, `${reg.host}/broken:1`);
  assert.equal(r.exitCode, 1, r.stdout);
  assert.match(r.stderr, /failed its health checks .*; fell back to revision [0-9a-f]{12}/);
  s = (await scrape()).samples;
  assert.equal(value(s, 'atomhost_gate_results_total', { phase: 'live', outcome: 'fall-back' }), 1);
  assert.equal(value(s, 'atomhost_fallbacks_total', { mode: 'live' }), 1);
  assert.equal(value(s, 'atomhost_fallback_duration_seconds_count'), 1);
  assert.equal(value(s, 'atomhost_transactions_total', { kind: 'container-install', result: 'failure' }), 1);
  assert.equal(value(s, 'atomhost_transaction_duration_seconds_count', { kind: 'container-install', result: 'failure' }), 1);
  // The failure's reason (a probe URL, unit journal lines) is not in the metrics.
  assert.doesNotMatch((await scrape()).text, new RegExp(String(ports.dead)));
});

test('an upgrade, a rollback and a failed deploy move the transaction counters, the histogram and the revision', async (t) => {
  if (!requireRoot(t)) return;
  await fx.publish('2.0');
  const up = await atomhost('upgrade');
  assert.equal(up.exitCode, 0, up.stderr);
  let s = (await scrape()).samples;
  assert.equal(value(s, 'atomhost_transactions_total', { kind: 'upgrade', result: 'success' }), 1);
  assert.equal(value(s, 'atomhost_transaction_duration_seconds_count', { kind: 'upgrade', result: 'success' }), 1);
  assert.ok(value(s, 'atomhost_transaction_duration_seconds_sum', { kind: 'upgrade', result: 'success' }) > 0);
  assert.equal(value(s, 'atomhost_transaction_duration_seconds_bucket', { kind: 'upgrade', result: 'success', le: '+Inf' }), 1);
  const def = s.find((x) => x.name === 'atomhost_revision_info' && x.labels.role === 'default');
  assert.deepEqual([def?.labels.version, def?.labels.state], ['2.0', 'deployed'], 'the new default is not gated yet');
  assert.equal(value(s, 'atomhost_deployments', { kind: 'all' }), 2);
  assert.equal(s.filter((x) => x.name === 'atomhost_transaction_running').length, 0, 'nothing runs');

  const rb = await atomhost('rollback');
  assert.equal(rb.exitCode, 0, rb.stderr);
  const bad = await atomhost('deploy', '0000000000000000000000000000000000000000000000000000000000000000');
  assert.notEqual(bad.exitCode, 0);
  s = (await scrape()).samples;
  assert.equal(value(s, 'atomhost_transactions_total', { kind: 'rollback', result: 'success' }), 1);
  assert.equal(value(s, 'atomhost_transactions_total', { kind: 'deploy', result: 'failure' }), 1);
  const back = s.find((x) => x.name === 'atomhost_revision_info' && x.labels.role === 'default');
  assert.deepEqual([back?.labels.version, back?.labels.state], ['1.0', 'healthy']);
});

test('a bad --metrics-listen or ATOMHOST_METRICS_LISTEN is refused naming it, before anything is opened', async () => {
  const run = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [DAEMON, ...args], { reject: false, env: { ATOMHOST_SYSROOT: '/nonexistent-atomhost-metrics', ...env }, timeout: 20_000 });
  let r = await run(['--metrics-listen', 'nonsense']);
  assert.equal(r.exitCode, 1);
  assert.equal(r.stderr, 'atomhostd: --metrics-listen "nonsense": not HOST:PORT (e.g. 127.0.0.1:9559 or [::1]:9559, port 1-65535)');
  r = await run(['--metrics-listen=127.0.0.1:70000']);
  assert.match(r.stderr, /^atomhostd: --metrics-listen "127\.0\.0\.1:70000": not HOST:PORT/);
  r = await run(['--metrics-listen']);
  assert.equal(r.stderr, 'atomhostd: --metrics-listen needs a value: HOST:PORT (e.g. 127.0.0.1:9559)');
  r = await run(['--metrics-listen', 'metrics.example:9559']);
  assert.match(r.stderr, /^atomhostd: --metrics-listen "metrics\.example:9559": metrics\.example is not an IP address/);
  // Beyond loopback only when asked: the endpoint has no authentication.
  r = await run(['--metrics-listen', '0.0.0.0:9559']);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /^atomhostd: --metrics-listen "0\.0\.0\.0:9559": 0\.0\.0\.0 is not a loopback address; .* needs --metrics-allow-remote \(ATOMHOST_METRICS_ALLOW_REMOTE=1\)$/);
  r = await run([], { ATOMHOST_METRICS_LISTEN: '[::]:9559' });
  assert.match(r.stderr, /^atomhostd: ATOMHOST_METRICS_LISTEN "\[::\]:9559": :: is not a loopback address/);
  r = await run([], { ATOMHOST_METRICS_LISTEN: '127.0.0.1:9559', ATOMHOST_METRICS_ALLOW_REMOTE: 'yes' });
  assert.equal(r.stderr, 'atomhostd: ATOMHOST_METRICS_ALLOW_REMOTE="yes": must be 0 or 1');
  r = await run(['--bogus']);
  assert.match(r.stderr, /^atomhostd: unknown option --bogus \(atomhostd \[--reconcile\|--gate\|--metrics-listen HOST:PORT/);
});
