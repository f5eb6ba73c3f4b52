// What a connection to one registry endpoint needs: plain HTTP or HTTPS (registries.conf
// decides, containers/registries-conf.ts) and credentials, looked up (only when the registry
// asks for them) in the order registries.conf `credential-helpers` gives: the auth files in
// the containers/docker auth.json format (with their credHelpers/credsStore), and
// docker-credential-NAME helpers. Credentials are held in memory only and never logged.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { helperGet, type Credentials } from './credential-helpers.js';
import { RegistryError } from './errors.js';
import { DOCKER_HUB } from './reference.js';
import { AUTH_FILE_HELPER, loadRegistriesConf } from './registries-conf.js';

/** atomhost's own file before registries.conf; no longer read. */
export const LEGACY_REGISTRIES_YAML = '/etc/atomhost/registries.yaml';

export interface RegistrySettings {
  insecure: boolean;
  /** Looks the credentials up (run at the registry's first 401, at most once per client). */
  credentials: () => Promise<Credentials | null>;
  /** Where they would come from, for a "needs credentials" message. */
  credentialSources: string;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Hosts the test suites reach over plain HTTP without writing a registries.conf
 * (ATOMHOST_INSECURE_REGISTRIES, comma-separated): a shortcut for tests only.
 */
export function testInsecureRegistries(): string[] {
  return (process.env.ATOMHOST_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

let legacyNoted = false;
/** Says once per process that the old file is ignored, and where its settings go now. */
export function noteLegacyRegistriesYaml(write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): string | null {
  if (!existsSync(LEGACY_REGISTRIES_YAML)) return null;
  const msg = `warning: ${LEGACY_REGISTRIES_YAML} is no longer read; registries are configured in /etc/containers/registries.conf and registries.conf.d/*.conf (containers-registries.conf(5)), e.g. [[registry]] location = "host:port" insecure = true`;
  if (!legacyNoted) write(msg);
  legacyNoted = true;
  return msg;
}

export function authFiles(): string[] {
  return [
    process.env.REGISTRY_AUTH_FILE,
    process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json') : undefined,
    '/run/containers/0/auth.json',
    '/etc/atomhost/auth.json',
    join(homedir(), '.docker', 'config.json'),
  ].filter((p): p is string => Boolean(p));
}

type AuthFile = {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
};

/**
 * Credentials from the auth files, first file that has the registry: its `credHelpers` entry
 * (a helper for that registry), its `auths` entry, then its `credsStore` (docker's helper for
 * every registry). Null when no file has any.
 */
export async function authFileCredentials(registry: string): Promise<Credentials | null> {
  // Docker Hub's credentials are filed under its legacy index URL by `docker login`.
  const keys = [registry, `https://${registry}`, `http://${registry}`];
  if (registry === DOCKER_HUB) keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  for (const file of authFiles()) {
    const doc = readJson(file) as AuthFile | null;
    if (!doc || typeof doc !== 'object') continue;
    const helper = keys.map((k) => doc.credHelpers?.[k]).find((h) => typeof h === 'string' && h);
    if (helper) {
      const c = await helperGet(helper, registry, `credHelpers in ${file}`);
      if (c) return c;
    }
    const entry = keys.map((k) => doc.auths?.[k]).find(Boolean);
    if (entry) {
      if (entry.username && entry.password) return { username: entry.username, password: entry.password, source: file };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1), source: file };
      }
    }
    if (typeof doc.credsStore === 'string' && doc.credsStore) {
      const c = await helperGet(doc.credsStore, registry, `credsStore in ${file}`);
      if (c) return c;
    }
  }
  return null;
}

/** The lookup order registries.conf gives (default: the auth files only). */
function credentialHelpers(): { helpers: string[]; origin: string | null } {
  return loadRegistriesConf().credentialHelpers ?? { helpers: [AUTH_FILE_HELPER], origin: null };
}

/**
 * Credentials for `registry` (its logical host: docker.io for Docker Hub), from each source
 * of credential-helpers in order; "not found" asks the next. A failing helper does not stop
 * a later source from answering (as in containers/image), but when none has credentials the
 * failures are the error.
 */
export async function credentialsFor(registry: string): Promise<Credentials | null> {
  const { helpers, origin } = credentialHelpers();
  const failures: Error[] = [];
  for (const h of helpers) {
    try {
      const c = h === AUTH_FILE_HELPER ? await authFileCredentials(registry) : await helperGet(h, registry, `credential-helpers at ${origin ?? 'registries.conf'}`);
      if (c) return c;
    } catch (err) {
      failures.push(err as Error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length) throw new RegistryError(`no credentials for ${registry}: ${failures.map((f) => f.message).join('; ')}`, { registry }, failures[0]);
  return null;
}

/** Where credentials for a registry are looked up, in words (for "needs credentials"). */
export function describeCredentialSources(): string {
  const { helpers, origin } = credentialHelpers();
  const names = helpers.map((h) => (h === AUTH_FILE_HELPER ? 'an auth file (REGISTRY_AUTH_FILE or /etc/atomhost/auth.json)' : `credential helper docker-credential-${h}`));
  return `${names.join(', then ')}${origin ? ` (credential-helpers at ${origin})` : ''}`;
}

/** Settings for one endpoint: `insecure` as registries.conf gave it for this source. */
export function settingsFor(registry: string, insecure = false): RegistrySettings {
  let lookup: Promise<Credentials | null> | null = null;
  return {
    insecure: insecure || testInsecureRegistries().includes(registry),
    credentials: () => (lookup ??= credentialsFor(registry)),
    credentialSources: describeCredentialSources(),
  };
}
