// atomhostd's Prometheus metrics (docs/metrics.md): every metric is defined here, in a
// registry of its own (not prom-client's global one), and served here. The daemon feeds
// it through a few calls (transactions, live gates, the update agent's changes); the
// revision and deployment gauges are read from the daemon's cached status at scrape time,
// so a scrape never waits for the sysroot (busy during a pull or deploy).
//
// Where it is served: always on a unix socket, /run/atomhost/metrics.sock, mode 0600
// (root only: a local collector running as root reads it, no other user does); and, when
// asked with --metrics-listen or ATOMHOST_METRICS_LISTEN, on HTTP at HOST:PORT. That
// address must be loopback unless --metrics-allow-remote (ATOMHOST_METRICS_ALLOW_REMOTE=1)
// says otherwise: the endpoint has no authentication, and what it tells (revisions, update
// state, failures) is the host's business.
//
// Nothing secret goes into a metric: no reasons, hook output, URLs or tokens; labels
// come from fixed sets (kinds, outcomes, states) or are revision ids and versions.
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import client from 'prom-client';
import { AtomhostError, InvalidArgumentError } from '../core/errors.js';
import type { HostStatus } from '../core/host-api.js';
import { UPDATE_STATES, type UpdatesReport } from '../core/updates/state.js';
import { BOOT_GATE_FILE, readBootSteps } from './boot-record.js';

export const METRICS_SOCKET = '/run/atomhost/metrics.sock';
/** Transaction kinds, from the daemon's transaction titles: a fixed set, so labels stay few. */
const KINDS: [RegExp, string][] = [
  [/^upgrade$/, 'upgrade'],
  [/^deploy /, 'deploy'],
  [/^rebase /, 'rebase'],
  [/^rollback$/, 'rollback'],
  [/^kargs$/, 'kargs'],
  [/^cleanup$/, 'cleanup'],
  [/^(un)?pin$/, 'pin'],
  [/^check for updates$/, 'check'],
  [/^container (install|update|rollback|uninstall) /, 'container-$1'],
  [/^restart role /, 'restart-role'],
  [/^remote (add|delete) /, 'remote-$1'],
  [/^automatic update /, 'automatic-update'],
];

export function transactionKind(title: string): string {
  for (const [re, kind] of KINDS) {
    const m = re.exec(title);
    if (m) return kind.replace('$1', m[1] ?? '');
  }
  return 'other';
}

/** What a gate decided: the GateDecision's action, or `error` when the gate itself failed. */
export type GateOutcome = 'healthy' | 'fall-back' | 'give-up' | 'wait' | 'none' | 'error';

export class AgentMetrics {
  readonly registry = new client.Registry();
  #status: () => HostStatus | null = () => null;
  #updates: () => UpdatesReport | null = () => null;
  #lastUpdateState: string | null = null;

  readonly #transactions = new client.Counter({
    name: 'atomhost_transactions_total',
    help: 'Transactions atomhostd finished, by kind and result (success, failure, cancelled).',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly #duration = new client.Histogram({
    name: 'atomhost_transaction_duration_seconds',
    help: 'How long transactions took, by kind and result.',
    labelNames: ['kind', 'result'] as const,
    // From a pin (ms) to a pull of a whole OS over a slow link (many minutes).
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly #running = new client.Gauge({
    name: 'atomhost_transaction_running',
    help: '1 while a transaction runs (its kind as label), else no series.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly #gates = new client.Counter({
    name: 'atomhost_gate_results_total',
    help: 'Health gates run by atomhostd (after live container changes), by outcome: healthy, fall-back, give-up, error.',
    labelNames: ['phase', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly #fallbacks = new client.Counter({
    name: 'atomhost_fallbacks_total',
    help: 'Fallbacks to the last healthy revision after a failed gate in atomhostd: applied live, or needing a reboot.',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly #fallbackSeconds = new client.Histogram({
    name: 'atomhost_fallback_duration_seconds',
    help: 'From the failed check to the previous revision running again, for live fallbacks.',
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly #updateChecks = new client.Counter({
    name: 'atomhost_update_checks_total',
    help: 'Update checks of the update agent, by the state the check led to (available, steady, error, ...).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean; bootGateFile?: string } = {}) {
    const metrics = this;
    new client.Gauge({
      name: 'atomhost_revision_info',
      help: 'The booted and the default deployment\'s revision (value 1), with its OS version and state (deployed, staged, booted, healthy, failed, rolled-back).',
      labelNames: ['role', 'revision', 'version', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const s = metrics.#status();
        for (const d of s?.status?.deployments ?? []) {
          const labels = { revision: d.revision?.id ?? '', version: d.version ?? '', state: d.revision?.state ?? 'unknown' };
          if (d.booted) this.set({ role: 'booted', ...labels }, 1);
          if (d.default) this.set({ role: 'default', ...labels }, 1);
        }
      },
    });
    new client.Gauge({
      name: 'atomhost_deployments',
      help: 'Deployments on the sysroot, by kind (all, staged, pinned).',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const deps = metrics.#status()?.status?.deployments;
        if (!deps) return;
        this.set({ kind: 'all' }, deps.length);
        this.set({ kind: 'staged' }, deps.filter((d) => d.staged).length);
        this.set({ kind: 'pinned' }, deps.filter((d) => d.pinned).length);
      },
    });
    new client.Gauge({
      name: 'atomhost_update_state',
      help: 'The update agent\'s state: 1 for the current state, 0 for the others.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const r = metrics.#updates();
        if (!r) return;
        for (const s of UPDATE_STATES) this.set({ state: s }, s === r.state ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'atomhost_update_last_check_timestamp_seconds',
      help: 'When the update agent last looked for an update (Unix time); no series before its first check.',
      registers: [this.registry],
      collect() {
        this.reset();
        const at = metrics.#updates()?.lastCheck;
        if (at) this.set(Date.parse(at) / 1000);
      },
    });
    new client.Gauge({
      name: 'atomhost_update_paused',
      help: '1 when the update agent is paused (atomhost updates pause).',
      registers: [this.registry],
      collect() {
        this.reset();
        const r = metrics.#updates();
        if (r) this.set(r.paused ? 1 : 0);
      },
    });
    const bootFile = opts.bootGateFile ?? BOOT_GATE_FILE;
    new client.Gauge({
      name: 'atomhost_boot_gate_result',
      help: 'What the boot units decided this boot (value 1): step reconcile (boot counting) or gate (the health gate), outcome healthy, wait, fall-back, give-up or error.',
      labelNames: ['step', 'outcome'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [step, r] of Object.entries(await readBootSteps(bootFile))) this.set({ step, outcome: r.outcome }, 1);
      },
    });
    new client.Gauge({
      name: 'atomhost_boot_gate_timestamp_seconds',
      help: 'When the boot unit of that step decided (Unix time).',
      labelNames: ['step'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [step, r] of Object.entries(await readBootSteps(bootFile))) this.set({ step }, Date.parse(r.at) / 1000);
      },
    });
    // The event-loop lag histogram samples every second, not prom-client's 10 ms: at 10 ms it
    // woke the idle daemon 100 times a second (≈ 0.4% of a core, docs/benchmarks.md).
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
  }

  /** Where the gauges read from: the daemon's cached status and the update agent's report. */
  readFrom(src: { status: () => HostStatus | null; updates: () => UpdatesReport | null }): void {
    this.#status = src.status;
    this.#updates = src.updates;
  }

  /** A transaction started; the returned function ends it (its result, from the error's code). */
  transactionStarted(title: string): (success: boolean, err?: unknown) => void {
    const kind = transactionKind(title);
    const end = this.#duration.startTimer({ kind });
    this.#running.set({ kind }, 1);
    return (success: boolean, err?: unknown) => {
      const result = success ? 'success' : err instanceof AtomhostError && err.code === 'AH_ERR_CANCELLED' ? 'cancelled' : 'failure';
      end({ result });
      this.#transactions.inc({ kind, result });
      this.#running.remove({ kind });
    };
  }

  /** A gate atomhostd ran. A fallback is counted with its mode, and a live one with its duration. */
  gateResult(phase: 'live' | 'boot', outcome: GateOutcome, fallback?: { reboot: boolean; ms?: number | null }): void {
    this.#gates.inc({ phase, outcome });
    if (!fallback) return;
    this.#fallbacks.inc({ mode: fallback.reboot ? 'reboot' : 'live' });
    if (!fallback.reboot && fallback.ms != null) this.#fallbackSeconds.observe(fallback.ms / 1000);
  }

  /** The update agent changed state: a check that ended is counted with where it led. */
  updatesChanged(r: UpdatesReport): void {
    if (this.#lastUpdateState === 'checking' && r.state !== 'checking') this.#updateChecks.inc({ result: r.state });
    this.#lastUpdateState = r.state;
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

export type MetricsListen = { host: string; port: number };

/** Parses HOST:PORT (or [IPv6]:PORT) of --metrics-listen / ATOMHOST_METRICS_LISTEN; `source` names the flag or variable in errors. */
export function parseMetricsListen(value: string, source: string, allowRemote: boolean): MetricsListen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError(`${source} ${JSON.stringify(value)}: not HOST:PORT (e.g. 127.0.0.1:9559 or [::1]:9559, port 1-65535)`, { option: source });
  }
  const ip = host === 'localhost' ? '127.0.0.1' : host;
  if (!isIP(ip)) throw new InvalidArgumentError(`${source} ${JSON.stringify(value)}: ${host} is not an IP address (give 127.0.0.1, ::1 or another address, not a name)`, { option: source });
  const loopback = ip === '::1' || /^127\./.test(ip);
  if (!loopback && !allowRemote) {
    throw new InvalidArgumentError(
      `${source} ${JSON.stringify(value)}: ${ip} is not a loopback address; the metrics have no authentication, so serving them beyond this host needs --metrics-allow-remote (ATOMHOST_METRICS_ALLOW_REMOTE=1)`,
      { option: source },
    );
  }
  return { host: ip, port };
}

/** The metrics options of atomhostd's command line and environment (the flag wins). */
export function metricsOptions(args: string[], env: NodeJS.ProcessEnv = process.env): { listen: MetricsListen | null; rest: string[] } {
  let flag: string | undefined;
  let allowRemote = env.ATOMHOST_METRICS_ALLOW_REMOTE === '1';
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--metrics-allow-remote') allowRemote = true;
    else if (a === '--metrics-listen') {
      if (i + 1 >= args.length || args[i + 1].startsWith('--')) throw new InvalidArgumentError('--metrics-listen needs a value: HOST:PORT (e.g. 127.0.0.1:9559)', { option: '--metrics-listen' });
      flag = args[++i];
    } else if (a.startsWith('--metrics-listen=')) flag = a.slice('--metrics-listen='.length);
    else rest.push(a);
  }
  const envValue = env.ATOMHOST_METRICS_LISTEN;
  if (env.ATOMHOST_METRICS_ALLOW_REMOTE && !['0', '1'].includes(env.ATOMHOST_METRICS_ALLOW_REMOTE)) {
    throw new InvalidArgumentError(`ATOMHOST_METRICS_ALLOW_REMOTE=${JSON.stringify(env.ATOMHOST_METRICS_ALLOW_REMOTE)}: must be 0 or 1`, { variable: 'ATOMHOST_METRICS_ALLOW_REMOTE' });
  }
  if (flag !== undefined) return { listen: parseMetricsListen(flag, '--metrics-listen', allowRemote), rest };
  if (envValue) return { listen: parseMetricsListen(envValue, 'ATOMHOST_METRICS_LISTEN', allowRemote), rest };
  return { listen: null, rest };
}

function handler(metrics: AgentMetrics) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('only GET\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      () => res.writeHead(500, { 'Content-Type': 'text/plain' }).end('cannot collect the metrics\n'),
    );
  };
}

function newServer(metrics: AgentMetrics): Server {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, handler(metrics));
  server.maxConnections = 32; // a scraper needs one; a flood gets refused, not the daemon's memory
  return server;
}

const listen = (server: Server, ...args: unknown[]) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => Server)(...args, () => {
      server.off('error', reject);
      resolve();
    });
  });

/**
 * Serves /metrics on the root-only socket and, if asked, on HOST:PORT. A listener that
 * cannot start is reported through `warn` and the daemon goes on (its bus service matters
 * more than its metrics); the returned function closes both.
 */
export async function serveMetrics(metrics: AgentMetrics, opts: { listen: MetricsListen | null; socket?: string | null; warn: (message: string) => void }): Promise<() => void> {
  const servers: Server[] = [];
  const socket = opts.socket === undefined ? METRICS_SOCKET : opts.socket;
  if (socket) {
    const s = newServer(metrics);
    try {
      await mkdir(dirname(socket), { recursive: true, mode: 0o755 });
      await rm(socket, { force: true }); // left by a daemon that was killed: the bus name says we are the only one
      // Created 0600 (umask) before it is reachable, then made sure of: root only.
      const umask = process.umask(0o177);
      try {
        await listen(s, socket);
      } finally {
        process.umask(umask);
      }
      await chmod(socket, 0o600);
      servers.push(s);
    } catch (err) {
      opts.warn(`metrics: cannot serve ${socket}: ${(err as Error).message}`);
    }
  }
  if (opts.listen) {
    const s = newServer(metrics);
    try {
      await listen(s, opts.listen.port, opts.listen.host);
      servers.push(s);
    } catch (err) {
      opts.warn(`metrics: cannot listen on ${opts.listen.host}:${opts.listen.port}: ${(err as Error).message}`);
    }
  }
  return () => {
    for (const s of servers) s.close();
  };
}
