// containers-certs.d(5): per-registry TLS, read as podman, skopeo and CRI-O read it on the
// same host. For a registry HOST[:PORT] the first of /etc/containers/certs.d/HOST[:PORT]/ and
// /etc/docker/certs.d/HOST[:PORT]/ that exists is used (containers/image's order): every
// `*.crt` is a CA added to the roots Node trusts anyway, `NAME.cert` + `NAME.key` is the client
// certificate. A .cert without its .key (or the reverse), a .crt that holds no certificate, or
// a key that does not fit its certificate is an error naming the file: a half-configured
// registry never silently falls back to no client certificate. Nothing is cached across changes:
// the directory is read at every connection set-up, its dispatcher reused while its files stay
// the same.
import { createHash, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { connect, createSecureContext, rootCertificates, type ConnectionOptions } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { AtomhostError } from '../core/errors.js';
import { confDir } from './registries-conf.js';

/** A certs.d file larger than this is not a certificate or a key. */
const MAX_FILE_BYTES = 1024 * 1024;

/** The certs.d roots, most preferred first (tests point both elsewhere). */
export function certsRoots(): string[] {
  return [process.env.ATOMHOST_CONTAINERS_CERTS_DIR || join(confDir(), 'certs.d'), process.env.ATOMHOST_DOCKER_CERTS_DIR || '/etc/docker/certs.d'];
}

export class CertsDirError extends AtomhostError {
  constructor(file: string, why: string) {
    super('AH_ERR_INVALID_ARGUMENT', `${file}: ${why} (containers-certs.d(5))`, { details: { file } });
    this.name = 'CertsDirError';
  }
}

export interface RegistryTls {
  /** The HOST[:PORT] directory that applies, or null when none exists. */
  dir: string | null;
  /** Where a CA for this registry would go (named in untrusted-certificate errors). */
  suggestedDir: string;
  caFiles: string[];
  ca: string[];
  client: { certFile: string; keyFile: string; cert: Buffer; key: Buffer } | null;
}

// Docker Hub's certs.d entry is under the name users see, not its API host (as containers/image reads it).
const dirName = (host: string) => (host === 'registry-1.docker.io' ? 'docker.io' : host);

function readSmall(file: string): Buffer {
  const st = statSync(file);
  if (st.size > MAX_FILE_BYTES) throw new CertsDirError(file, `is larger than ${MAX_FILE_BYTES} bytes`);
  return readFileSync(file);
}

/** The PEM certificates of a .crt file, each checked; an empty or broken file is an error naming it. */
function readCa(file: string): string[] {
  const text = readSmall(file).toString('utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CertsDirError(file, 'holds no PEM certificate (a CA file must be PEM, -----BEGIN CERTIFICATE-----)');
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new CertsDirError(file, `certificate ${i + 1} cannot be parsed (${(err as Error).message})`);
    }
  }
  return blocks;
}

/** Reads the certs.d directory of one registry host; a malformed one throws CertsDirError. */
export function registryTls(host: string, roots = certsRoots()): RegistryTls {
  const name = dirName(host);
  const suggestedDir = join(roots[0], name);
  const dir = roots.map((r) => join(r, name)).find((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  const out: RegistryTls = { dir: dir ?? null, suggestedDir, caFiles: [], ca: [], client: null };
  if (!dir) return out;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new CertsDirError(dir, `cannot be read (${(err as Error).message})`);
  }
  const has = (n: string) => names.includes(n);
  for (const n of names) {
    const file = join(dir, n);
    if (n.endsWith('.crt')) {
      out.caFiles.push(file);
      out.ca.push(...readCa(file));
    } else if (n.endsWith('.cert')) {
      const keyName = `${n.slice(0, -'.cert'.length)}.key`;
      if (!has(keyName)) throw new CertsDirError(file, `is a client certificate without its key ${join(dir, keyName)} (a CA certificate must be named *.crt)`);
      if (out.client) throw new CertsDirError(file, `is a second client certificate (${out.client.certFile} is one already); keep one NAME.cert/NAME.key pair`);
      const keyFile = join(dir, keyName);
      const cert = readSmall(file);
      const key = readSmall(keyFile);
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        throw new CertsDirError(file, `and ${keyFile} are not a usable certificate and key pair (${(err as Error).message})`);
      }
      out.client = { certFile: file, keyFile, cert, key };
    } else if (n.endsWith('.key')) {
      const certName = `${n.slice(0, -'.key'.length)}.cert`;
      if (!has(certName)) throw new CertsDirError(file, `is a client key without its certificate ${join(dir, certName)}`);
    }
  }
  return out;
}

/** What Node trusts without certs.d: its root store and NODE_EXTRA_CA_CERTS (an explicit `ca` replaces both). */
function defaultRoots(): string[] {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return [...rootCertificates];
  try {
    return [...rootCertificates, readFileSync(extra, 'utf8')];
  } catch {
    return [...rootCertificates];
  }
}

function connectOptions(tls: RegistryTls): ConnectionOptions {
  return {
    ...(tls.ca.length ? { ca: [...defaultRoots(), ...tls.ca] } : {}),
    ...(tls.client ? { cert: tls.client.cert, key: tls.client.key } : {}),
  };
}

/**
 * Why a TLS 1.3 server dropped the connection: its refusal of a client certificate arrives as
 * an alert after the handshake, which undici reports only as "other side closed". One bare
 * TLS connection with the same settings reads that alert (null when there is none).
 */
export function probeTls(host: string, tls: RegistryTls, timeoutMs = 5000): Promise<unknown> {
  const u = new URL(`https://${host}`);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 443), servername: isIP(u.hostname) ? undefined : u.hostname, ...connectOptions(tls) });
    const done = (v: unknown) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.once('secureConnect', () => s.write(`GET /v2/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    s.once('data', () => done(null));
    s.once('error', (err) => done(err));
    s.once('close', () => done(null));
  });
}

const agents = new Map<string, { fingerprint: string; agent: Agent }>();

/**
 * The undici dispatcher for connections to `host`: `fallback` when no certs.d directory
 * applies, else an Agent with its CAs and client certificate (one per host, replaced when
 * the files change).
 */
export function dispatcherFor(host: string, fallback: Dispatcher): { dispatcher: Dispatcher; tls: RegistryTls } {
  const tls = registryTls(host);
  if (!tls.dir || (tls.ca.length === 0 && !tls.client)) return { dispatcher: fallback, tls };
  const h = createHash('sha256').update(tls.dir);
  for (const c of tls.ca) h.update(c);
  if (tls.client) h.update(tls.client.cert).update(tls.client.key);
  const fingerprint = h.digest('hex');
  const seen = agents.get(host);
  if (seen?.fingerprint === fingerprint) return { dispatcher: seen.agent, tls };
  if (seen) void seen.agent.close().catch(() => {});
  const agent = new Agent({ connections: 8, connect: connectOptions(tls) });
  agents.set(host, { fingerprint, agent });
  return { dispatcher: agent, tls };
}

const UNTRUSTED = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE']);

/**
 * What to tell the user about a TLS failure talking to `host`, naming the certs.d file to
 * add or fix; null when `err` is not one of these.
 */
export function explainTlsError(host: string, err: unknown, tls: RegistryTls): string | null {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  const message = `${e?.message ?? ''} ${e?.cause?.message ?? ''}`;
  if (UNTRUSTED.has(code)) {
    const have = tls.caFiles.length ? ` (the CAs in ${tls.caFiles.join(', ')} do not sign it)` : '';
    return `the TLS certificate of ${host} is not trusted: ${code}${have}; add the registry's CA as ${join(tls.dir ?? tls.suggestedDir, 'ca.crt')}`;
  }
  if (/CERTIFICATE_REQUIRED|ALERT_BAD_CERTIFICATE|ALERT_HANDSHAKE_FAILURE|ALERT_UNKNOWN_CA|certificate required|bad certificate/i.test(`${code} ${message}`)) {
    const dir = tls.dir ?? tls.suggestedDir;
    return tls.client
      ? `${host} refused the client certificate ${tls.client.certFile} in the TLS handshake (${code || message.trim()})`
      : `${host} asks for a client certificate in the TLS handshake and none is configured; add it as ${join(dir, 'client.cert')} with its key ${join(dir, 'client.key')}`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'CERT_NOT_YET_VALID') {
    return `the TLS certificate of ${host} is not valid for it: ${code} (${(e.message ?? '').trim()})`;
  }
  return null;
}
