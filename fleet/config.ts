// The lock server's command-line settings, checked before anything starts: each bad value is
// refused with the flag and the value it got.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { InvalidArgumentError } from '../core/errors.js';
import type { EtcdTls } from './etcd.js';
import { GROUP_RE } from './protocol.js';

export interface ServeSettings {
  host: string;
  port: number;
  etcd: string[];
  /** TLS to https:// etcd members */
  etcdTls: EtcdTls | undefined;
  slots: number;
  groups: Map<string, number>;
  lockTtlSeconds: number;
  token: string | undefined;
  tls: { cert: Buffer; key: Buffer; clientCa?: Buffer } | undefined;
}

export interface ServeFlags extends EtcdFlags {
  listen: string;
  slots: string;
  group?: string[];
  lockTtl?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
}

export function parseServeFlags(f: ServeFlags): ServeSettings {
  const { host, port } = parseListen(f.listen);
  const groups = new Map<string, number>();
  for (const g of f.group ?? []) {
    const m = /^([^=]+)=(.*)$/.exec(g);
    if (!m || !GROUP_RE.test(m[1]!)) throw new InvalidArgumentError(`--group ${JSON.stringify(g)}: expected NAME=N with NAME matching ${GROUP_RE.source}`, { flag: '--group', value: g });
    groups.set(m[1]!, parseSlots(`--group ${m[1]}`, m[2]!));
  }
  const etcd = parseEtcdFlags(f);
  return {
    host,
    port,
    etcd: etcd.urls,
    etcdTls: etcd.tls,
    slots: parseSlots('--slots', f.slots),
    groups,
    lockTtlSeconds: parseDuration('--lock-ttl', f.lockTtl ?? '1h'),
    token: f.tokenFile !== undefined ? readToken(f.tokenFile) : undefined,
    tls: parseTls(f),
  };
}

/** --tls-cert/--tls-key (both or neither) and --client-ca (needs them): read and checked now. */
function parseTls(f: ServeFlags): ServeSettings['tls'] {
  if (f.tlsCert === undefined && f.tlsKey === undefined) {
    if (f.clientCa !== undefined) throw new InvalidArgumentError('--client-ca needs --tls-cert and --tls-key (client certificates are checked in the TLS handshake)', { flag: '--client-ca' });
    return undefined;
  }
  const { cert, key } = readCertAndKey({ flag: '--tls-cert', path: f.tlsCert }, { flag: '--tls-key', path: f.tlsKey });
  const clientCa = f.clientCa !== undefined ? readCa('--client-ca', f.clientCa) : undefined;
  return { cert, key, ...(clientCa ? { clientCa } : {}) };
}

export interface EtcdFlags {
  etcd: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export interface EtcdSettings {
  urls: string[];
  /** set for https:// members */
  tls: EtcdTls | undefined;
}

/**
 * --etcd with --etcd-cacert/--etcd-cert/--etcd-key (etcdctl's --cacert/--cert/--key): the
 * members all http:// or all https://, the TLS files only for https:// and read and checked now.
 */
export function parseEtcdFlags(f: EtcdFlags): EtcdSettings {
  const urls = parseEtcdUrls(f.etcd);
  const https = urls[0]!.startsWith('https:');
  const given = (['--etcd-cacert', '--etcd-cert', '--etcd-key'] as const).filter((_, i) => [f.etcdCacert, f.etcdCert, f.etcdKey][i] !== undefined);
  if (!https) {
    // Silently speaking plain HTTP when TLS files were given would hide a mistake.
    if (given.length > 0) throw new InvalidArgumentError(`${given[0]} needs https:// --etcd URLs (got ${urls.join(',')})`, { flag: given[0] });
    return { urls, tls: undefined };
  }
  const ca = f.etcdCacert !== undefined ? readCa('--etcd-cacert', f.etcdCacert) : undefined;
  const pair = f.etcdCert !== undefined || f.etcdKey !== undefined ? readCertAndKey({ flag: '--etcd-cert', path: f.etcdCert }, { flag: '--etcd-key', path: f.etcdKey }) : undefined;
  return { urls, tls: { ...(ca ? { ca } : {}), ...(pair ?? {}) } };
}

/** A certificate and its private key, given together: both read, parsed and matched now. */
function readCertAndKey(c: { flag: string; path: string | undefined }, k: { flag: string; path: string | undefined }): { cert: Buffer; key: Buffer } {
  if (c.path === undefined || k.path === undefined) {
    const missing = c.path === undefined ? c.flag : k.flag;
    throw new InvalidArgumentError(`${missing} is missing: ${c.flag} and ${k.flag} go together`, { flag: missing });
  }
  const cert = readPem(c.flag, c.path);
  const key = readPem(k.flag, k.path);
  try {
    createSecureContext({ cert });
  } catch (err) {
    throw new InvalidArgumentError(`${c.flag} ${c.path}: not a usable PEM certificate (${(err as Error).message})`, { flag: c.flag, file: c.path });
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new InvalidArgumentError(`${k.flag} ${k.path}: not the PEM private key of ${c.flag} ${c.path} (${(err as Error).message})`, { flag: k.flag, file: k.path });
  }
  return { cert, key };
}

/** A PEM CA certificate (bundle) to verify the other side with. */
function readCa(flag: string, path: string): Buffer {
  const ca = readPem(flag, path);
  try {
    // createSecureContext takes a file without any certificate (a key, say) silently.
    new X509Certificate(ca);
    createSecureContext({ ca });
  } catch (err) {
    throw new InvalidArgumentError(`${flag} ${path}: not a usable PEM CA certificate (${(err as Error).message})`, { flag, file: path });
  }
  return ca;
}

/** A PEM file named by `flag`; its contents are never echoed (a key is secret). */
export function readPem(flag: string, path: string): Buffer {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { flag, file: path });
  }
  if (!b.includes('-----BEGIN ')) throw new InvalidArgumentError(`${flag} ${path}: not a PEM file (no "-----BEGIN" line)`, { flag, file: path });
  return b;
}

export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`--listen ${JSON.stringify(v)}: expected HOST:PORT (e.g. 0.0.0.0:3333)`, { flag: '--listen', value: v });
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Comma-separated etcd client URLs, all http:// or all https:// (one cluster serves one scheme). */
export function parseEtcdUrls(v: string): string[] {
  const urls = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError('--etcd: no URL given', { flag: '--etcd' });
  for (const u of urls) {
    let p: URL | undefined;
    try {
      p = new URL(u);
    } catch {
      p = undefined;
    }
    if (!p || (p.protocol !== 'http:' && p.protocol !== 'https:') || !p.hostname) throw new InvalidArgumentError(`--etcd ${JSON.stringify(u)}: expected http://HOST:PORT or https://HOST:PORT`, { flag: '--etcd', value: u });
  }
  const schemes = new Set(urls.map((u) => new URL(u).protocol));
  if (schemes.size > 1) throw new InvalidArgumentError(`--etcd ${JSON.stringify(v)}: mixes http:// and https:// members (the members of one cluster all serve TLS or none does)`, { flag: '--etcd', value: v });
  return urls;
}

function parseSlots(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 100000) throw new InvalidArgumentError(`${flag} ${JSON.stringify(v)}: expected a whole number of slots ≥ 1`, { flag, value: v });
  return n;
}

/** "90", "90s", "15m", "1h", "1h30m" → seconds (etcd leases count whole seconds, minimum 2). */
export function parseDuration(flag: string, v: string): number {
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  if (/^\d+$/.test(v)) total = Number(v);
  else {
    const parts = /^(?:\d+[smhd])+$/.test(v) ? v.match(/\d+[smhd]/g)! : null;
    if (!parts) throw new InvalidArgumentError(`${flag} ${JSON.stringify(v)}: expected a duration such as 90s, 15m, 1h or 1h30m`, { flag, value: v });
    for (const p of parts) total += Number(p.slice(0, -1)) * unit[p.slice(-1)]!;
  }
  if (total < 2 || total > 365 * 86400) throw new InvalidArgumentError(`${flag} ${JSON.stringify(v)}: must be between 2 s and 365 days`, { flag, value: v });
  return total;
}

function readToken(path: string): string {
  let t: string;
  try {
    t = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new InvalidArgumentError(`--token-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { flag: '--token-file', file: path });
  }
  // The token itself is never echoed, not even in this error.
  if (t.length < 16 || /\s/.test(t)) throw new InvalidArgumentError(`--token-file ${path}: the token must be one line of at least 16 characters without spaces`, { flag: '--token-file', file: path });
  return t;
}
