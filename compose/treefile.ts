// The treefile: what `atomhost compose` builds. YAML with a Debian suite, packages, files,
// units to enable and a version; `include:` extends another treefile (v2 = v1 + changes).
// Every problem is reported at once with its file and field path.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import { AtomhostError } from '../core/errors.js';

export interface TreeFileEntry {
  content: string;
  mode: number;
}

export interface Treefile {
  /** The file it was read from (the last of an include chain). */
  source: string;
  osname: string;
  ref: string;
  version: string;
  suite: string;
  mirror: string;
  packages: string[];
  files: Record<string, TreeFileEntry>;
  units: { enable: string[]; disable: string[] };
  /** Kernel arguments recorded in the commit metadata (`atomhost.kargs`), for installers. */
  kargs: string[];
  /** Embed atomhost itself (the CLI, atomhostd, a Node.js runtime and the units). */
  atomhost: boolean;
}

export class TreefileError extends AtomhostError {
  constructor(source: string, problems: string[]) {
    super('AH_ERR_INVALID_ARGUMENT', `treefile ${source}: ${problems.join('; ')}`, { details: { source, problems } });
    this.name = 'TreefileError';
  }
}

const PKG_RE = /^[a-z0-9][a-z0-9+.-]+$/;
const UNIT_RE = /^[A-Za-z0-9:_.@-]+\.(service|socket|timer|target|path|mount)$/;
const REF_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

type Raw = Record<string, unknown>;

function readRaw(path: string, chain: string[]): { raw: Raw; parent: Raw | null } {
  if (chain.includes(path)) throw new TreefileError(path, [`include loop: ${[...chain, path].join(' → ')}`]);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TreefileError(path, [`cannot read: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new TreefileError(path, [`not YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new TreefileError(path, ['(document) must be a mapping']);
  const raw = doc as Raw;
  if (raw.include === undefined) return { raw, parent: null };
  if (typeof raw.include !== 'string') throw new TreefileError(path, ['include must be a path']);
  const inc = isAbsolute(raw.include) ? raw.include : resolve(dirname(path), raw.include);
  return { raw, parent: merged(inc, [...chain, path]) };
}

/** The include chain merged: scalars override, packages and units add up, files override per path. */
function merged(path: string, chain: string[] = []): Raw {
  const { raw, parent } = readRaw(path, chain);
  if (!parent) return { ...raw, __source: path };
  const out: Raw = { ...parent, ...raw, __source: path };
  const list = (k: string) => [...((parent[k] as unknown[]) ?? []), ...((raw[k] as unknown[]) ?? [])];
  if (Array.isArray(parent.packages) || Array.isArray(raw.packages)) out.packages = list('packages');
  if (Array.isArray(parent.kargs) && raw.kargs === undefined) out.kargs = parent.kargs;
  out.files = { ...((parent.files as Raw) ?? {}), ...((raw.files as Raw) ?? {}) };
  const pu = (parent.units as Raw) ?? {};
  const ru = (raw.units as Raw) ?? {};
  out.units = {
    enable: [...((pu.enable as unknown[]) ?? []), ...((ru.enable as unknown[]) ?? [])],
    disable: [...((pu.disable as unknown[]) ?? []), ...((ru.disable as unknown[]) ?? [])],
  };
  return out;
}

export function parseTreefile(path: string): Treefile {
  const source = resolve(path);
  const raw = merged(source);
  const problems: string[] = [];
  const str = (k: string, required: boolean, re?: RegExp): string => {
    const v = raw[k];
    if (v === undefined || v === null) {
      if (required) problems.push(`${k} is required`);
      return '';
    }
    const s = typeof v === 'number' ? String(v) : v;
    if (typeof s !== 'string' || !s) problems.push(`${k} must be a non-empty string`);
    else if (re && !re.test(s)) problems.push(`${k} ${JSON.stringify(s)} must match ${re}`);
    return typeof s === 'string' ? s : '';
  };
  if (raw.kind !== undefined && raw.kind !== 'Treefile') problems.push(`kind must be Treefile, not ${JSON.stringify(raw.kind)}`);
  const osname = str('osname', true, /^[A-Za-z0-9_-]+$/);
  const ref = str('ref', true, REF_RE);
  const version = str('version', true, /^[A-Za-z0-9._+~-]+$/);
  const suite = str('suite', false, /^[a-z]+$/) || 'bookworm';
  const mirror = str('mirror', false, /^(https?|file):\/\/\S+$/) || DEFAULT_MIRROR;
  const strList = (v: unknown, field: string, re: RegExp): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      problems.push(`${field} must be a list`);
      return [];
    }
    v.forEach((x, i) => {
      if (typeof x !== 'string' || !re.test(x)) problems.push(`${field}[${i}] ${JSON.stringify(x)} is not valid (${re})`);
    });
    return v.filter((x): x is string => typeof x === 'string' && re.test(x));
  };
  const packages = [...new Set(strList(raw.packages, 'packages', PKG_RE))].sort();
  const units = (raw.units ?? {}) as Raw;
  const enable = strList(units.enable, 'units.enable', UNIT_RE);
  const disable = strList(units.disable, 'units.disable', UNIT_RE);
  const kargs = strList(raw.kargs, 'kargs', /^[^\s"'\\]+$/);
  const files: Record<string, TreeFileEntry> = {};
  const rawFiles = raw.files ?? {};
  if (typeof rawFiles !== 'object' || Array.isArray(rawFiles)) problems.push('files must be a mapping of absolute paths');
  else {
    for (const [p, e] of Object.entries(rawFiles as Raw)) {
      const field = `files[${JSON.stringify(p)}]`;
      if (!p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.') || /[\n\0]/.test(p)) {
        problems.push(`${field}: the path must be absolute, without . or .. components`);
        continue;
      }
      if (p.startsWith('/var/') || p === '/var') problems.push(`${field}: /var is the host's state and is not part of the OS commit`);
      const entry = typeof e === 'string' ? { content: e } : ((e ?? {}) as Raw);
      if (typeof entry.content !== 'string') problems.push(`${field}.content must be a string`);
      const mode = entry.mode === undefined ? 0o644 : typeof entry.mode === 'number' ? entry.mode : parseInt(String(entry.mode), 8);
      if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) problems.push(`${field}.mode must be an octal mode such as "0755"`);
      if (typeof entry.content === 'string') files[p] = { content: entry.content, mode };
    }
  }
  const atomhost = raw.atomhost === undefined ? true : raw.atomhost;
  if (typeof atomhost !== 'boolean') problems.push('atomhost must be true or false');
  for (const k of Object.keys(raw)) {
    if (!['apiVersion', 'kind', 'include', '__source', 'osname', 'ref', 'version', 'suite', 'mirror', 'packages', 'files', 'units', 'kargs', 'atomhost'].includes(k)) problems.push(`unknown field ${k}`);
  }
  if (problems.length) throw new TreefileError(source, problems);
  return { source, osname, ref, version, suite, mirror, packages, files, units: { enable, disable }, kargs, atomhost: atomhost as boolean };
}
