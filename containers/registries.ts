// Which registries may be reached over plain HTTP (only those listed, as registries.conf
// does) and their credentials, from an auth file in the containers/docker auth.json
// format. Credentials are held in memory only and never logged.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';

export const REGISTRIES_CONF = '/etc/atomhost/registries.yaml';

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

export function insecureRegistries(): string[] {
  const out = (process.env.ATOMHOST_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  try {
    const doc = YAML.parse(readFileSync(process.env.ATOMHOST_REGISTRIES_CONF ?? REGISTRIES_CONF, 'utf8')) as { insecure?: string[] } | null;
    out.push(...(doc?.insecure ?? []));
  } catch {
    // no file: no insecure registries
  }
  return out;
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
  for (const file of authFiles()) {
    const doc = readJson(file) as { auths?: Record<string, { auth?: string; username?: string; password?: string }> } | null;
    const entry = doc?.auths?.[registry] ?? doc?.auths?.[`https://${registry}`] ?? doc?.auths?.[`http://${registry}`];
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

export function settingsFor(registry: string): RegistrySettings {
  return { insecure: insecureRegistries().includes(registry), credentials: credentialsFor(registry) };
}
