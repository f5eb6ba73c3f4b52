// Minimal GKeyFile-style reader/writer for OSTree origin files ([section] key=value).
// Keeps unknown sections and keys so that an origin written by other tools survives.

export type KeyFile = Map<string, Map<string, string>>;

export function parseKeyFile(text: string): KeyFile {
  const kf: KeyFile = new Map();
  let section: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = kf.get(m[1]) ?? new Map();
      kf.set(m[1], section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !section) continue;
    section.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return kf;
}

export function serializeKeyFile(kf: KeyFile): string {
  const out: string[] = [];
  for (const [name, entries] of kf) {
    out.push(`[${name}]`);
    for (const [k, v] of entries) out.push(`${k}=${v}`);
    out.push('');
  }
  return out.join('\n');
}

export function getKey(kf: KeyFile, section: string, key: string): string | undefined {
  return kf.get(section)?.get(key);
}

export function setKey(kf: KeyFile, section: string, key: string, value: string): KeyFile {
  let s = kf.get(section);
  if (!s) {
    s = new Map();
    kf.set(section, s);
  }
  s.set(key, value);
  return kf;
}
