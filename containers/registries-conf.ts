// containers-registries.conf(5), version 2: the one source of registry settings, read as
// podman, CRI-O and skopeo read it on the same host. /etc/containers/registries.conf, then
// registries.conf.d/*.conf in lexical order; a later file replaces a [[registry]] with the
// same prefix, unqualified-search-registries and short-name-mode when it sets them, and
// single aliases ("" erases one). Nothing is cached: every pull reads the files again.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { AtomhostError } from '../core/errors.js';
import { formatReference, isRegistryHost, splitReference, type ImageReference } from './reference.js';

export const CONTAINERS_CONF_DIR = '/etc/containers';

/** The directory holding registries.conf and registries.conf.d (tests point it elsewhere). */
export const confDir = (): string => process.env.ATOMHOST_CONTAINERS_CONF_DIR || CONTAINERS_CONF_DIR;

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryEntry {
  prefix: string;
  /** Where the prefix's namespace really is; "" for a wildcard prefix (no rewrite). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorEntry[];
  /** file:line of its [[registry]] table. */
  origin: string;
}

export interface RegistriesConf {
  /** The files read, in order. */
  files: string[];
  registries: RegistryEntry[];
  search: { registries: string[]; origin: string | null };
  shortNameMode: { mode: ShortNameMode; origin: string | null };
  aliases: Map<string, { value: string; origin: string }>;
  /** credential-helpers: where credentials are looked up, in order ("containers-auth.json" = the auth files); absent = the auth files only. */
  credentialHelpers?: { helpers: string[]; origin: string | null };
}

/** The credential-helpers entry that stands for the auth files (containers-auth.json(5)). */
export const AUTH_FILE_HELPER = 'containers-auth.json';

export class RegistriesConfError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('AH_ERR_INVALID_ARGUMENT', message, { details });
    this.name = 'RegistriesConfError';
  }
}

export class BlockedRegistryError extends AtomhostError {
  constructor(image: string, entry: RegistryEntry) {
    super('AH_ERR_REGISTRY', `${image} is blocked by registries.conf: [[registry]] prefix "${entry.prefix}" has blocked = true (${entry.origin})`, { details: { image, prefix: entry.prefix, origin: entry.origin } });
    this.name = 'BlockedRegistryError';
  }
}

const SHORT_NAME_MODES: ShortNameMode[] = ['enforcing', 'permissive', 'disabled'];
const PULL_FROM_MIRROR: PullFromMirror[] = ['all', 'digest-only', 'tag-only'];

/** Reads the files of `dir` (registries.conf, then registries.conf.d/*.conf) and merges them. */
export function loadRegistriesConf(dir = confDir()): RegistriesConf {
  const files: string[] = [];
  const main = join(dir, 'registries.conf');
  if (existsSync(main)) files.push(main);
  const dropDir = join(dir, 'registries.conf.d');
  let names: string[] = [];
  try {
    names = readdirSync(dropDir).filter((n) => n.endsWith('.conf')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch {
    // no drop-in directory
  }
  files.push(...names.map((n) => join(dropDir, n)));
  const conf: RegistriesConf = { files, registries: [], search: { registries: [], origin: null }, shortNameMode: { mode: 'enforcing', origin: null }, aliases: new Map(), credentialHelpers: { helpers: [AUTH_FILE_HELPER], origin: null } };
  const byPrefix = new Map<string, RegistryEntry>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RegistriesConfError(`${file}: cannot be read (${(err as Error).message})`, { file });
    }
    const one = parseRegistriesFile(file, text);
    for (const r of one.registries) byPrefix.set(r.prefix, r);
    if (one.search) conf.search = one.search;
    if (one.shortNameMode) conf.shortNameMode = one.shortNameMode;
    if (one.credentialHelpers) conf.credentialHelpers = one.credentialHelpers;
    for (const [k, v] of one.aliases) {
      if (v.value === '') conf.aliases.delete(k);
      else conf.aliases.set(k, v);
    }
  }
  conf.registries = [...byPrefix.values()];
  // One location reached under several prefixes must be reached one way (as containers/image
  // requires): otherwise which entry's insecure or blocked applies would depend on the name.
  const byLocation = new Map<string, RegistryEntry>();
  for (const r of conf.registries) {
    if (!r.location) continue;
    const seen = byLocation.get(r.location);
    if (seen && (seen.insecure !== r.insecure || seen.blocked !== r.blocked)) {
      throw new RegistriesConfError(`${r.origin}: [[registry]] location "${r.location}" is also at ${seen.origin} with different insecure/blocked settings; give them the same`, { file: r.origin, location: r.location });
    }
    byLocation.set(r.location, r);
  }
  return conf;
}

interface FileSettings {
  registries: RegistryEntry[];
  search: RegistriesConf['search'] | null;
  shortNameMode: RegistriesConf['shortNameMode'] | null;
  aliases: Map<string, { value: string; origin: string }>;
  credentialHelpers: RegistriesConf['credentialHelpers'] | null;
}

/** Line (1-based) of `key = ` in the text, at or after line `from`; `from` when not found. */
function lineOf(lines: string[], key: string, from = 1): number {
  const esc = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^\\s*(?:"${esc}"|'${esc}'|${esc})\\s*=`);
  for (let i = from - 1; i < lines.length; i++) if (re.test(lines[i])) return i + 1;
  return from;
}

/** Line of the n-th (0-based) [[registry]] header. */
function registryLine(lines: string[], n: number): number {
  let seen = -1;
  for (let i = 0; i < lines.length; i++) if (/^\s*\[\[\s*registry\s*\]\]/.test(lines[i]) && ++seen === n) return i + 1;
  return 1;
}

/** Parses one file (version 2 only) and checks every field's type and form. */
export function parseRegistriesFile(file: string, text: string): FileSettings {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new RegistriesConfError(`${file}:${err.line}:${err.column}: invalid TOML: ${err.message.split('\n')[0]}`, { file, line: err.line, column: err.column });
    }
    throw new RegistriesConfError(`${file}: invalid TOML: ${(err as Error).message}`, { file });
  }
  const lines = text.split('\n');
  const fail = (line: number, key: string, why: string) => new RegistriesConfError(`${file}:${line}: ${key}: ${why}`, { file, line, key });
  if (doc.registries !== undefined) {
    const sub = doc.registries && typeof doc.registries === 'object' ? Object.keys(doc.registries as object) : [];
    const key = `registries${sub.length ? `.${sub[0]}` : ''}`;
    const line = lines.findIndex((l) => /^\s*\[\s*registries\b/.test(l) || /^\s*registries\s*[.=]/.test(l)) + 1 || 1;
    throw fail(line, key, 'this is the version 1 format, which atomhost does not read; write version 2: unqualified-search-registries = [...] and [[registry]] tables with location, insecure, blocked (containers-registries.conf(5))');
  }
  const out: FileSettings = { registries: [], search: null, shortNameMode: null, aliases: new Map(), credentialHelpers: null };
  const at = (line: number) => `${file}:${line}`;

  const usr = doc['unqualified-search-registries'];
  if (usr !== undefined) {
    const line = lineOf(lines, 'unqualified-search-registries');
    if (!Array.isArray(usr) || usr.some((x) => typeof x !== 'string')) throw fail(line, 'unqualified-search-registries', 'must be an array of strings (host[:port])');
    for (const h of usr as string[]) if (!/^[a-zA-Z0-9.[\]:-]+$/.test(h) || h.includes('://')) throw fail(line, 'unqualified-search-registries', `${JSON.stringify(h)} is not a host[:port]`);
    out.search = { registries: usr as string[], origin: at(line) };
  }
  const mode = doc['short-name-mode'];
  if (mode !== undefined) {
    const line = lineOf(lines, 'short-name-mode');
    if (typeof mode !== 'string' || (mode !== '' && !SHORT_NAME_MODES.includes(mode as ShortNameMode))) throw fail(line, 'short-name-mode', `must be one of ${SHORT_NAME_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
    if (mode !== '') out.shortNameMode = { mode: mode as ShortNameMode, origin: at(line) };
  }

  const helpers = doc['credential-helpers'];
  if (helpers !== undefined) {
    const line = lineOf(lines, 'credential-helpers');
    if (!Array.isArray(helpers) || helpers.some((x) => typeof x !== 'string')) throw fail(line, 'credential-helpers', 'must be an array of strings (helper names, or "containers-auth.json" for the auth files)');
    // A name becomes the program docker-credential-NAME looked up on PATH: never a path.
    for (const h of helpers as string[]) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(h)) throw fail(line, 'credential-helpers', `${JSON.stringify(h)} is not a helper name (letters, digits, ".", "_", "-"; the program run is docker-credential-NAME)`);
    // An empty list means the default, as in containers/image.
    out.credentialHelpers = { helpers: (helpers as string[]).length ? (helpers as string[]) : [AUTH_FILE_HELPER], origin: at(line) };
  }

  const regs = doc.registry;
  if (regs !== undefined) {
    if (!Array.isArray(regs)) throw fail(lineOf(lines, 'registry'), 'registry', 'must be an array of tables ([[registry]])');
    regs.forEach((raw: unknown, i: number) => {
      const start = registryLine(lines, i);
      const name = `registry[${i}]`;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw fail(start, name, 'must be a table');
      const r = raw as Record<string, unknown>;
      const str = (k: string) => {
        if (r[k] === undefined) return undefined;
        if (typeof r[k] !== 'string') throw fail(lineOf(lines, k, start), `${name}.${k}`, `must be a string (got ${JSON.stringify(r[k])})`);
        return r[k] as string;
      };
      const bool = (o: Record<string, unknown>, k: string, path: string, from: number) => {
        if (o[k] === undefined) return false;
        if (typeof o[k] !== 'boolean') throw fail(lineOf(lines, k, from), `${path}.${k}`, `must be true or false (got ${JSON.stringify(o[k])})`);
        return o[k] as boolean;
      };
      let location = str('location');
      let prefix = str('prefix');
      if (location !== undefined) location = checkLocation(location, (why) => fail(lineOf(lines, 'location', start), `${name}.location`, why));
      if (prefix !== undefined) prefix = checkLocation(prefix, (why) => fail(lineOf(lines, 'prefix', start), `${name}.prefix`, why));
      if (!prefix && !location) throw fail(start, name, 'has neither prefix nor location');
      prefix = prefix || location!;
      if (prefix.startsWith('*.')) {
        if (/[/@:]/.test(prefix)) throw fail(lineOf(lines, 'prefix', start), `${name}.prefix`, `a wildcard prefix must look like *.example.com (got ${JSON.stringify(prefix)})`);
        if (location) throw fail(lineOf(lines, 'location', start), `${name}.location`, `cannot be set with the wildcard prefix ${JSON.stringify(prefix)} (each matching host is its own location)`);
      } else if (prefix.includes('*')) {
        throw fail(lineOf(lines, 'prefix', start), `${name}.prefix`, `a wildcard may only open the prefix, as *.example.com (got ${JSON.stringify(prefix)})`);
      }
      if (r['pull-from-mirror'] !== undefined) throw fail(lineOf(lines, 'pull-from-mirror', start), `${name}.pull-from-mirror`, 'belongs in a [[registry.mirror]] table, not in [[registry]]');
      const digestOnly = bool(r, 'mirror-by-digest-only', name, start);
      const mirrorsRaw = r.mirror ?? [];
      if (!Array.isArray(mirrorsRaw)) throw fail(lineOf(lines, 'mirror', start), `${name}.mirror`, 'must be an array of tables ([[registry.mirror]])');
      const mirrors = mirrorsRaw.map((mr: unknown, j: number): MirrorEntry => {
        const mStart = mirrorLine(lines, start, j);
        const path = `${name}.mirror[${j}]`;
        if (!mr || typeof mr !== 'object' || Array.isArray(mr)) throw fail(mStart, path, 'must be a table');
        const m = mr as Record<string, unknown>;
        if (typeof m.location !== 'string' || !m.location) throw fail(lineOf(lines, 'location', mStart), `${path}.location`, m.location === undefined ? 'is missing' : `must be a non-empty string (got ${JSON.stringify(m.location)})`);
        const loc = checkLocation(m.location, (why) => fail(lineOf(lines, 'location', mStart), `${path}.location`, why));
        const pfm = m['pull-from-mirror'];
        if (pfm !== undefined && (typeof pfm !== 'string' || !PULL_FROM_MIRROR.includes(pfm as PullFromMirror))) {
          throw fail(lineOf(lines, 'pull-from-mirror', mStart), `${path}.pull-from-mirror`, `must be one of ${PULL_FROM_MIRROR.join(', ')} (got ${JSON.stringify(pfm)})`);
        }
        if (pfm !== undefined && digestOnly) throw fail(lineOf(lines, 'pull-from-mirror', mStart), `${path}.pull-from-mirror`, 'cannot be set when the registry sets mirror-by-digest-only');
        return { location: loc, insecure: bool(m, 'insecure', path, mStart), pullFromMirror: digestOnly ? 'digest-only' : ((pfm as PullFromMirror | undefined) ?? 'all') };
      });
      out.registries.push({ prefix, location: prefix.startsWith('*.') ? '' : (location || prefix), insecure: bool(r, 'insecure', name, start), blocked: bool(r, 'blocked', name, start), mirrors, origin: at(start) });
    });
  }

  const aliases = doc.aliases;
  if (aliases !== undefined) {
    const aStart = lines.findIndex((l) => /^\s*\[\s*aliases\s*\]/.test(l)) + 1 || 1;
    if (!aliases || typeof aliases !== 'object' || Array.isArray(aliases)) throw fail(aStart, 'aliases', 'must be a table');
    for (const [k, v] of Object.entries(aliases as Record<string, unknown>)) {
      const line = lineOf(lines, k, aStart);
      const key = `aliases."${k}"`;
      if (typeof v !== 'string') throw fail(line, key, `must be a string (got ${JSON.stringify(v)})`);
      let name;
      try {
        name = splitReference(k, { what: 'alias name' });
      } catch (err) {
        throw fail(line, key, (err as Error).message);
      }
      if (name.registry !== null || name.tag || name.digest) throw fail(line, key, 'an alias name must be a short name, without registry, tag or digest');
      if (v !== '') {
        let value;
        try {
          value = splitReference(v, { what: 'alias value' });
        } catch (err) {
          throw fail(line, key, (err as Error).message);
        }
        if (value.registry === null) throw fail(line, key, `the alias ${JSON.stringify(v)} must be fully qualified (registry/name)`);
        if (value.tag || value.digest) throw fail(line, key, `the alias ${JSON.stringify(v)} may not carry a tag or digest`);
      }
      out.aliases.set(k, { value: v, origin: at(line) });
    }
  }
  return out;
}

/** Line of the j-th [[registry.mirror]] after the [[registry]] header at `start`. */
function mirrorLine(lines: string[], start: number, j: number): number {
  let seen = -1;
  for (let i = start; i < lines.length; i++) {
    if (/^\s*\[\[\s*registry\s*\]\]/.test(lines[i])) break;
    if (/^\s*\[\[\s*registry\s*\.\s*mirror\s*\]\]/.test(lines[i]) && ++seen === j) return i + 1;
  }
  return start;
}

/** A prefix or location: no URI scheme, no spaces; a trailing slash is dropped. */
function checkLocation(value: string, make: (why: string) => RegistriesConfError): string {
  if (value.includes('://')) throw make(`URI schemes are not supported (got ${JSON.stringify(value)}); write host[:port][/path] and set insecure = true for plain HTTP`);
  if (!value.trim() || /\s/.test(value)) throw make(`must be host[:port][/path] without spaces (got ${JSON.stringify(value)})`);
  const v = value.replace(/\/+$/, '');
  if (v.startsWith('*.')) return v;
  if (v.includes('*')) throw make(`a wildcard may only open the prefix, as *.example.com (got ${JSON.stringify(v)})`);
  // What gets spliced into an image name must itself be a valid start of one.
  if (!v.includes('/')) {
    if (!isRegistryHost(v.replace(/[:@].*$/, '')) || !isRegistryHost(v.split('@')[0])) throw make(`${JSON.stringify(v)} is not a registry host[:port]`);
  } else {
    try {
      splitReference(v, { qualified: true, what: 'location' });
    } catch (err) {
      throw make((err as Error).message.replace(/^invalid location /, ''));
    }
  }
  return v;
}

/**
 * How much of `ref` (registry/repo:tag@digest) the prefix matches, or -1: the whole
 * prefix followed by the end or a separator; `*.example.com` matches any subdomain's host.
 */
export function prefixMatch(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const host = ref.split('/')[0].replace(/:[0-9]+$/, '');
    const suffix = prefix.slice(1);
    if (!host.endsWith(suffix) || host.length === suffix.length) return -1;
    return host.length;
  }
  if (ref === prefix) return prefix.length;
  if (ref.length > prefix.length && ref.startsWith(prefix) && '/:@'.includes(ref[prefix.length])) return prefix.length;
  return -1;
}

/** The [[registry]] with the longest matching prefix, and how much of the reference it matched. */
export function findRegistry(conf: RegistriesConf, ref: string): { entry: RegistryEntry; matched: number } | null {
  let best: { entry: RegistryEntry; matched: number } | null = null;
  for (const entry of conf.registries) {
    const n = prefixMatch(ref, entry.prefix);
    if (n >= 0 && (!best || n > best.matched)) best = { entry, matched: n };
  }
  return best;
}

export interface PullSource {
  /** Where the bytes are fetched (after location rewriting). */
  reference: ImageReference;
  insecure: boolean;
  /** "mirror" or "primary". */
  kind: 'mirror' | 'primary';
  /** The file:line that decided it (null when no [[registry]] matched). */
  origin: string | null;
}

export interface SkippedMirror {
  location: string;
  why: string;
}

/**
 * Where a fully qualified reference is pulled from, in order: its mirrors (those its
 * pull-from-mirror allows), then the primary location. A blocked prefix throws.
 */
export function pullSources(conf: RegistriesConf, ref: ImageReference): { entry: RegistryEntry | null; sources: PullSource[]; skipped: SkippedMirror[] } {
  const name = formatReference(ref);
  const hit = findRegistry(conf, name);
  if (!hit) return { entry: null, sources: [{ reference: ref, insecure: false, kind: 'primary', origin: null }], skipped: [] };
  const { entry, matched } = hit;
  if (entry.blocked) throw new BlockedRegistryError(name, entry);
  const rewrite = (location: string, what: string) => parseRewritten(location + name.slice(matched), `${what} of [[registry]] prefix "${entry.prefix}" (${entry.origin})`);
  const sources: PullSource[] = [];
  const skipped: SkippedMirror[] = [];
  for (const m of entry.mirrors) {
    if (m.pullFromMirror === 'digest-only' && !ref.digest) skipped.push({ location: m.location, why: 'pull-from-mirror = digest-only and the reference has no digest' });
    else if (m.pullFromMirror === 'tag-only' && ref.digest) skipped.push({ location: m.location, why: 'pull-from-mirror = tag-only and the reference has a digest' });
    else sources.push({ reference: rewrite(m.location, `mirror ${m.location}`), insecure: m.insecure, kind: 'mirror', origin: entry.origin });
  }
  sources.push({ reference: entry.location ? rewrite(entry.location, 'location') : ref, insecure: entry.insecure, kind: 'primary', origin: entry.origin });
  return { entry, sources, skipped };
}

function parseRewritten(text: string, what: string): ImageReference {
  const r = splitReference(text, { qualified: true, what: `image reference rewritten by the ${what}` });
  return { ...r, registry: r.registry! };
}
