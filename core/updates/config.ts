// The update policy: /etc/atomhost/updates.d/*.yaml (ATOMHOST_UPDATES_DIR elsewhere),
// drop-ins merged in lexical order, later keys win (objects merge key by key, lists and
// scalars are replaced), as Zincati merges its TOML fragments. Every field is checked
// here; a bad one is refused naming the file that set it, the key and the value.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { InvalidArgumentError } from '../errors.js';

export const UPDATES_DIR = '/etc/atomhost/updates.d';
export const updatesDir = (): string => process.env.ATOMHOST_UPDATES_DIR || UPDATES_DIR;

export type Strategy = 'immediate' | 'periodic' | 'fleet_lock';
export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Day = (typeof DAYS)[number];

export interface Window {
  days: Day[];
  /** Minutes after local midnight. */
  start: number;
  lengthMinutes: number;
}

export interface Hook {
  argv: string[];
  timeoutMs: number;
}

export interface UpdatesConfig {
  enabled: boolean;
  strategy: Strategy;
  intervalMs: number;
  /** The timer fires at interval + a random part of this. */
  jitterMs: number;
  periodic: { timeZone: string; windows: Window[] };
  /** tokenFile: the bearer token `fleetlock serve --token-file` expects (read at each request, never logged). */
  /** caFile/certFile/keyFile: PEM files for an https:// lock server (its CA; a client certificate for mTLS). */
  fleetLock: { baseUrl: string; group: string; tokenFile: string | null; caFile?: string; certFile?: string; keyFile?: string } | null;
  graph: { url: string; stream: string; basearch: string; rolloutWariness: number | null } | null;
  hooks: { preReboot: Hook[]; postHealthy: Hook[] };
  /** The drop-ins read, in order. */
  files: string[];
}

const DEFAULTS = { intervalMs: 60 * 60_000, hookTimeoutMs: 10 * 60_000 };
const TOP = ['enabled', 'strategy', 'interval', 'jitter', 'periodic', 'fleet_lock', 'graph', 'hooks'];

/** Where each merged key came from, for error messages ("periodic.windows" → file). */
type Origins = Map<string, string>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>, file: string, origins: Origins, prefix = ''): void {
  for (const [k, v] of Object.entries(from)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObject(v) && isObject(into[k])) merge(into[k] as Record<string, unknown>, v, file, origins, key);
    else {
      into[k] = isObject(v) ? structuredClone(v) : v;
      for (const o of [...origins.keys()]) if (o.startsWith(`${key}.`)) origins.delete(o);
    }
    origins.set(key, file);
  }
}

/** "90s", "15m", "1h", "500ms", "2h30m" → milliseconds. */
export function parseDuration(v: unknown): number | null {
  if (typeof v !== 'string' || !/^(\d+(ms|s|m|h|d))+$/.test(v)) return null;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const m of v.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * unit[m[2]];
  return total;
}

/** True when `tz` is an IANA time zone this Node knows. */
export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Reads and merges the drop-ins of `dir`; a missing directory is the default policy (enabled, immediate, no graph). */
export async function loadUpdatesConfig(dir = updatesDir()): Promise<UpdatesConfig> {
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InvalidArgumentError(`${dir}: ${(err as Error).message}`, { file: dir });
  }
  const merged: Record<string, unknown> = {};
  const origins: Origins = new Map();
  const files: string[] = [];
  for (const n of names) {
    const file = join(dir, n);
    const text = await readFile(file, 'utf8');
    let doc: unknown;
    try {
      doc = parse(text, { maxAliasCount: 100 });
    } catch (err) {
      const pos = (err as { linePos?: { line: number }[] }).linePos?.[0]?.line;
      throw new InvalidArgumentError(`${file}${pos ? `:${pos}` : ''}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { file });
    }
    files.push(file);
    if (doc == null) continue;
    if (!isObject(doc)) throw new InvalidArgumentError(`${file}: the document must be a mapping of policy keys, not ${JSON.stringify(doc).slice(0, 60)}`, { file });
    merge(merged, doc, file, origins);
  }
  return validate(merged, origins, files, dir);
}

function validate(c: Record<string, unknown>, origins: Origins, files: string[], dir: string): UpdatesConfig {
  const where = (key: string): string => {
    for (let k = key; k; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') if (origins.has(k)) return origins.get(k)!;
    return dir;
  };
  const bad = (key: string, value: unknown, why: string): never => {
    throw new InvalidArgumentError(`${where(key)}: ${key}: ${JSON.stringify(value)?.slice(0, 120)} ${why}`, { file: where(key), key, value: String(value) });
  };
  const unknownKeys = (obj: Record<string, unknown>, allowed: string[], prefix: string) => {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) bad(prefix ? `${prefix}.${k}` : k, obj[k], `is not a known key (${allowed.join(', ')})`);
  };
  const section = (key: string): Record<string, unknown> | null => {
    const v = c[key];
    if (v === undefined || v === null) return null;
    if (!isObject(v)) return bad(key, v, 'must be a mapping');
    return v;
  };
  const str = (obj: Record<string, unknown>, k: string, prefix: string): string | undefined => {
    const v = obj[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !v) return bad(`${prefix}.${k}`, v, 'must be a non-empty string');
    return v;
  };
  const url = (obj: Record<string, unknown>, k: string, prefix: string): string => {
    const v = str(obj, k, prefix);
    if (v === undefined) return bad(`${prefix}.${k}`, v, 'is required');
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return bad(`${prefix}.${k}`, v, 'is not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`${prefix}.${k}`, v, 'must be an http or https URL');
    if (u.search || u.hash) bad(`${prefix}.${k}`, v, 'is a base URL: no query or fragment');
    return v.replace(/\/+$/, '');
  };

  unknownKeys(c, TOP, '');
  const enabled = c.enabled ?? true;
  if (typeof enabled !== 'boolean') bad('enabled', enabled, 'must be true or false');
  const strategy = c.strategy ?? 'immediate';
  if (strategy !== 'immediate' && strategy !== 'periodic' && strategy !== 'fleet_lock') bad('strategy', strategy, 'must be immediate, periodic or fleet_lock');
  const intervalMs = c.interval === undefined ? DEFAULTS.intervalMs : parseDuration(c.interval) ?? bad('interval', c.interval, 'must be a duration like 30m, 1h or 90s');
  if (intervalMs < 10_000) bad('interval', c.interval, 'must be at least 10s');
  const jitterMs = c.jitter === undefined ? Math.round(intervalMs / 10) : parseDuration(c.jitter) ?? bad('jitter', c.jitter, 'must be a duration like 5m');

  const p = section('periodic');
  let periodic: UpdatesConfig['periodic'] = { timeZone: 'UTC', windows: [] };
  if (p) {
    unknownKeys(p, ['time_zone', 'windows'], 'periodic');
    const timeZone = str(p, 'time_zone', 'periodic') ?? 'UTC';
    if (!validTimeZone(timeZone)) bad('periodic.time_zone', timeZone, 'is not an IANA time zone (e.g. Europe/Berlin, UTC)');
    const ws = p.windows ?? [];
    if (!Array.isArray(ws)) bad('periodic.windows', ws, 'must be a list of windows');
    const windows = (ws as unknown[]).map((w, i): Window => {
      const key = `periodic.windows[${i}]`;
      if (!isObject(w)) return bad(key, w, 'must be a mapping with days, start_time and length_minutes');
      unknownKeys(w, ['days', 'start_time', 'length_minutes'], key);
      if (!Array.isArray(w.days) || !w.days.length) bad(`${key}.days`, w.days, `must be a non-empty list of ${DAYS.join(', ')}`);
      const days = (w.days as unknown[]).map((d, j) => (DAYS.includes(d as Day) ? (d as Day) : bad(`${key}.days[${j}]`, d, `is not a day (${DAYS.join(', ')})`)));
      const m = typeof w.start_time === 'string' ? /^([01]\d|2[0-3]):([0-5]\d)$/.exec(w.start_time) : null;
      if (!m) bad(`${key}.start_time`, w.start_time, 'must be a 24-hour time HH:MM');
      const len = w.length_minutes;
      if (typeof len !== 'number' || !Number.isInteger(len) || len < 1 || len > 7 * 24 * 60) bad(`${key}.length_minutes`, len, 'must be a whole number of minutes from 1 to 10080');
      return { days, start: Number(m![1]) * 60 + Number(m![2]), lengthMinutes: len as number };
    });
    periodic = { timeZone, windows };
  }
  if (strategy === 'periodic' && !periodic.windows.length) bad('strategy', strategy, 'needs at least one window in periodic.windows');

  const f = section('fleet_lock');
  let fleetLock: UpdatesConfig['fleetLock'] = null;
  if (f) {
    unknownKeys(f, ['base_url', 'group', 'token_file', 'ca_file', 'cert_file', 'key_file'], 'fleet_lock');
    const group = str(f, 'group', 'fleet_lock') ?? 'default';
    if (!/^[a-zA-Z0-9.-]+$/.test(group)) bad('fleet_lock.group', group, 'must match ^[a-zA-Z0-9.-]+$');
    const tokenFile = str(f, 'token_file', 'fleet_lock') ?? null;
    if (tokenFile !== null && !tokenFile.startsWith('/')) bad('fleet_lock.token_file', tokenFile, 'must be an absolute path');
    const tlsFiles: { caFile?: string; certFile?: string; keyFile?: string } = {};
    for (const [k, field] of [['ca_file', 'caFile'], ['cert_file', 'certFile'], ['key_file', 'keyFile']] as const) {
      const v = str(f, k, 'fleet_lock');
      if (v === undefined) continue;
      if (!v.startsWith('/')) bad(`fleet_lock.${k}`, v, 'must be an absolute path');
      tlsFiles[field] = v;
    }
    if ((tlsFiles.certFile === undefined) !== (tlsFiles.keyFile === undefined)) bad(tlsFiles.certFile ? 'fleet_lock.key_file' : 'fleet_lock.cert_file', undefined, 'is required with the other (a client certificate and its key)');
    const baseUrl = url(f, 'base_url', 'fleet_lock');
    if ((tlsFiles.caFile || tlsFiles.certFile) && !baseUrl.startsWith('https:')) bad('fleet_lock.base_url', baseUrl, 'must be an https URL with ca_file, cert_file or key_file');
    fleetLock = { baseUrl, group, tokenFile, ...tlsFiles };
  }
  if (strategy === 'fleet_lock' && !fleetLock) bad('strategy', strategy, 'needs fleet_lock.base_url');

  const g = section('graph');
  let graph: UpdatesConfig['graph'] = null;
  if (g) {
    unknownKeys(g, ['url', 'stream', 'basearch', 'rollout_wariness'], 'graph');
    const stream = str(g, 'stream', 'graph') ?? bad('graph.stream', undefined, 'is required with graph.url');
    if (!/^[a-zA-Z0-9._-]+$/.test(stream)) bad('graph.stream', stream, 'must match ^[a-zA-Z0-9._-]+$');
    const basearch = str(g, 'basearch', 'graph') ?? 'x86_64';
    if (!/^[a-zA-Z0-9_]+$/.test(basearch)) bad('graph.basearch', basearch, 'must match ^[a-zA-Z0-9_]+$');
    const w = g.rollout_wariness;
    if (w !== undefined && (typeof w !== 'number' || !(w >= 0 && w <= 1))) bad('graph.rollout_wariness', w, 'must be a number from 0.0 (eager) to 1.0 (wary)');
    graph = { url: url(g, 'url', 'graph'), stream, basearch, rolloutWariness: (w as number | undefined) ?? null };
  }

  const h = section('hooks');
  const hooks: UpdatesConfig['hooks'] = { preReboot: [], postHealthy: [] };
  if (h) {
    unknownKeys(h, ['pre_reboot', 'post_healthy'], 'hooks');
    for (const [k, into] of [['pre_reboot', hooks.preReboot], ['post_healthy', hooks.postHealthy]] as const) {
      const list = h[k] ?? [];
      if (!Array.isArray(list)) bad(`hooks.${k}`, list, 'must be a list of hooks ({argv: [...], timeout: 10m})');
      (list as unknown[]).forEach((x, i) => {
        const key = `hooks.${k}[${i}]`;
        if (!isObject(x)) return bad(key, x, 'must be a mapping {argv: [...], timeout: 10m}');
        unknownKeys(x, ['argv', 'timeout'], key);
        const argv = x.argv;
        if (!Array.isArray(argv) || !argv.length || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) bad(`${key}.argv`, argv, 'must be a non-empty list of strings');
        if (!(argv as string[])[0].startsWith('/')) bad(`${key}.argv[0]`, (argv as string[])[0], 'must be an absolute path (hooks run without a shell or PATH lookup)');
        const timeoutMs = x.timeout === undefined ? DEFAULTS.hookTimeoutMs : parseDuration(x.timeout) ?? bad(`${key}.timeout`, x.timeout, 'must be a duration like 10m');
        if (timeoutMs < 1) bad(`${key}.timeout`, x.timeout, 'must be longer than 0');
        into.push({ argv: argv as string[], timeoutMs });
      });
    }
  }
  return { enabled: enabled as boolean, strategy: strategy as Strategy, intervalMs, jitterMs, periodic, fleetLock, graph, hooks, files };
}
