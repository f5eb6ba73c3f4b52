// What a connection to one registry endpoint needs: plain HTTP or HTTPS (registries.conf
// decides, containers/registries-conf.ts) and credentials, from an auth file in the
// containers/docker auth.json format. Credentials are held in memory only and never logged.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB } from './reference.js';

/** atomhost's own file before registries.conf; no longer read. */
export const LEGACY_REGISTRIES_YAML = '/etc/atomhost/registries.yaml';

export interface RegistrySettings {
  insecure: boolean;
  credentials: { username: string; password: string } | null;
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

export function credentialsFor(registry: string): RegistrySettings['credentials'] {
  // Docker Hub's credentials are filed under its legacy index URL by `docker login`.
  const keys = [registry, `https://${registry}`, `http://${registry}`];
  if (registry === DOCKER_HUB) keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  for (const file of authFiles()) {
    const doc = readJson(file) as { auths?: Record<string, { auth?: string; username?: string; password?: string }> } | null;
    const entry = keys.map((k) => doc?.auths?.[k]).find(Boolean);
    if (!entry) continue;
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
    }
  }
  return null;
}

/** Settings for one endpoint: `insecure` as registries.conf gave it for this source. */
export function settingsFor(registry: string, insecure = false): RegistrySettings {
  return { insecure: insecure || testInsecureRegistries().includes(registry), credentials: credentialsFor(registry) };
}
