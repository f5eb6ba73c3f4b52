// containers-policy.json(5): which images may be pulled, read as podman, skopeo and CRI-O
// read it on the same host ($ATOMHOST_CONTAINERS_CONF_DIR or /etc/containers/policy.json).
// The "docker" transport's most specific scope decides (host:port/ns/repo:tag or @digest,
// then repo, each parent namespace, host, *.domain wildcards, "", then the top-level
// "default"); every requirement of that scope must pass. Parsed strictly, as
// containers/image does: an unknown key or a wrong type is an error naming the file and the
// JSON path, never a requirement silently dropped. Nothing is cached: every pull reads it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AtomhostError } from '../core/errors.js';
import { confDir } from './registries-conf.js';
import { DOCKER_HUB, isRegistryHost, splitReference, type ImageReference, type SplitReference } from './reference.js';

export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** A GPG key of a signedBy requirement: a file, or keyData (base64) inline. */
export type PolicyKey = { path: string } | { data: Buffer };

export type Requirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy'; keys: PolicyKey[]; signedIdentity: SignedIdentity }
  /** Parsed so a policy that uses it elsewhere still loads; refused where it applies (not implemented). */
  | { type: 'sigstoreSigned' };

export interface ImagePolicy {
  file: string;
  default: Requirement[];
  /** transport → scope → requirements. */
  transports: Map<string, Map<string, Requirement[]>>;
}

/** The requirements that apply to one image and the entry they come from. */
export interface ApplicablePolicy {
  file: string;
  /** `transports.docker["127.0.0.1:5000/app"]` or `default`. */
  entry: string;
  requirements: Requirement[];
}

export class ImagePolicyFileError extends AtomhostError {
  constructor(file: string, path: string, why: string) {
    super('AH_ERR_INVALID_ARGUMENT', `${file}: ${path ? `${path}: ` : ''}${why}`, { details: { file, path } });
    this.name = 'ImagePolicyFileError';
  }
}

export const policyFile = (dir = confDir()): string => join(dir, 'policy.json');

/**
 * Reads the policy. A missing file gives null: the caller decides (atomhost then accepts,
 * see docs/containers.md); an unreadable or malformed one throws.
 */
export function loadImagePolicy(file = policyFile()): ImagePolicy | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ImagePolicyFileError(file, '', `cannot be read (${(err as Error).message})`);
  }
  return parseImagePolicy(file, text);
}

const quote = (k: string) => JSON.stringify(k);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

export function parseImagePolicy(file: string, text: string): ImagePolicy {
  const fail = (path: string, why: string): never => {
    throw new ImagePolicyFileError(file, path, why);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail('', `is not valid JSON (${(err as Error).message})`);
  }
  const object = (v: unknown, path: string): Record<string, unknown> => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) fail(path, `must be an object, not ${typeName(v)}`);
    return v as Record<string, unknown>;
  };
  const only = (o: Record<string, unknown>, path: string, allowed: string[]) => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(path, `unknown key ${quote(k)} (expected ${allowed.join(', ')})`);
  };
  const string = (o: Record<string, unknown>, k: string, path: string): string => {
    const v = o[k];
    if (typeof v !== 'string' || v === '') fail(`${path}.${k}`, v === undefined ? 'is missing' : `must be a non-empty string, not ${typeName(v)}`);
    return v as string;
  };
  const identity = (v: unknown, path: string): SignedIdentity => {
    const o = object(v, path);
    const t = o.type;
    switch (t) {
      case 'matchExact':
      case 'matchRepoDigestOrExact':
      case 'matchRepository':
        only(o, path, ['type']);
        return { type: t };
      case 'exactReference': {
        only(o, path, ['type', 'dockerReference']);
        const ref = string(o, 'dockerReference', path);
        const r = parseDockerName(ref);
        if (!r || (!r.tag && !r.digest)) fail(`${path}.dockerReference`, `${quote(ref)} must be a full image reference with a tag or a digest`);
        return { type: t, dockerReference: ref };
      }
      case 'exactRepository': {
        only(o, path, ['type', 'dockerRepository']);
        const repo = string(o, 'dockerRepository', path);
        const r = parseDockerName(repo);
        if (!r || r.tag || r.digest) fail(`${path}.dockerRepository`, `${quote(repo)} must be a repository name without a tag or digest`);
        return { type: t, dockerRepository: repo };
      }
      case 'remapIdentity': {
        only(o, path, ['type', 'prefix', 'signedPrefix']);
        const prefix = string(o, 'prefix', path);
        const signedPrefix = string(o, 'signedPrefix', path);
        for (const [k, p] of [['prefix', prefix], ['signedPrefix', signedPrefix]] as const) if (!p || !validScope(p, true) || p.startsWith('*.')) fail(`${path}.${k}`, `${quote(p)} must be a host[:port], a namespace or a repository`);
        return { type: t, prefix, signedPrefix };
      }
      default:
        return fail(`${path}.type`, `unknown signedIdentity type ${JSON.stringify(t)} (matchExact, matchRepoDigestOrExact, matchRepository, exactReference, exactRepository, remapIdentity)`);
    }
  };
  const requirement = (v: unknown, path: string): Requirement => {
    const o = object(v, path);
    const t = o.type;
    switch (t) {
      case 'insecureAcceptAnything':
      case 'reject':
        only(o, path, ['type']);
        return { type: t };
      case 'signedBy': {
        only(o, path, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity']);
        const keyType = string(o, 'keyType', path);
        if (keyType !== 'GPGKeys') fail(`${path}.keyType`, `${quote(keyType)} is not supported (only GPGKeys)`);
        const given = ['keyPath', 'keyPaths', 'keyData'].filter((k) => o[k] !== undefined);
        if (given.length !== 1) fail(path, `exactly one of keyPath, keyPaths, keyData must be set (${given.length ? given.join(' and ') : 'none'} given)`);
        let keys: PolicyKey[];
        if (o.keyPath !== undefined) keys = [{ path: string(o, 'keyPath', path) }];
        else if (o.keyPaths !== undefined) {
          const list = o.keyPaths;
          if (!Array.isArray(list) || list.length === 0) fail(`${path}.keyPaths`, 'must be a non-empty list of file names');
          keys = (list as unknown[]).map((p, i) => {
            if (typeof p !== 'string' || !p) fail(`${path}.keyPaths[${i}]`, `must be a non-empty string, not ${typeName(p)}`);
            return { path: p as string };
          });
        } else {
          const data = string(o, 'keyData', path);
          if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data.replace(/\s+/g, ''))) fail(`${path}.keyData`, 'must be base64');
          keys = [{ data: Buffer.from(data, 'base64') }];
        }
        const signedIdentity = o.signedIdentity === undefined ? ({ type: 'matchRepoDigestOrExact' } as const) : identity(o.signedIdentity, `${path}.signedIdentity`);
        return { type: 'signedBy', keys, signedIdentity };
      }
      case 'sigstoreSigned':
        return { type: 'sigstoreSigned' };
      default:
        return fail(`${path}.type`, `unknown requirement type ${JSON.stringify(t)} (insecureAcceptAnything, reject, signedBy, sigstoreSigned)`);
    }
  };
  const requirements = (v: unknown, path: string): Requirement[] => {
    if (!Array.isArray(v)) fail(path, `must be a list of requirements, not ${typeName(v)}`);
    if ((v as unknown[]).length === 0) fail(path, 'must not be an empty list (say [{"type": "insecureAcceptAnything"}] to accept anything)');
    return (v as unknown[]).map((r, i) => requirement(r, `${path}[${i}]`));
  };

  const top = object(doc, '');
  only(top, '', ['default', 'transports']);
  if (top.default === undefined) fail('default', 'is missing (every policy needs a default)');
  const policy: ImagePolicy = { file, default: requirements(top.default, 'default'), transports: new Map() };
  if (top.transports !== undefined) {
    const transports = object(top.transports, 'transports');
    for (const [name, scopesDoc] of Object.entries(transports)) {
      const tpath = `transports.${name}`;
      const scopes = object(scopesDoc, tpath);
      const map = new Map<string, Requirement[]>();
      for (const [scope, reqs] of Object.entries(scopes)) {
        const spath = `${tpath}[${quote(scope)}]`;
        if (name === 'docker' && !validScope(scope)) fail(spath, 'is not a valid docker scope (host[:port][/namespace…][/repo][:tag|@digest], *.domain, or "")');
        map.set(scope, requirements(reqs, spath));
      }
      policy.transports.set(name, map);
    }
  }
  return policy;
}

/** A docker name as policy.json and signatures write it (normalized the way docker does: busybox → docker.io/library/busybox). */
export interface DockerName {
  /** registry/repository */
  name: string;
  tag: string | null;
  digest: string | null;
}

/**
 * Parses and normalizes a docker reference as policy.json names images (containers/image's
 * ParseNormalizedNamed: a short name is Docker Hub's), or null when it is not one. The
 * grammar is the one image references have everywhere (containers/reference.ts).
 */
export function parseDockerName(s: string): DockerName | null {
  if (s.includes('://')) return null;
  let r: SplitReference;
  try {
    r = splitReference(s);
  } catch {
    return null;
  }
  const host = r.registry ?? DOCKER_HUB;
  const repository = host === DOCKER_HUB && !r.repository.includes('/') ? `library/${r.repository}` : r.repository;
  return { name: `${host}/${repository}`, tag: r.tag, digest: r.digest };
}

export const formatDockerName = (r: DockerName): string => `${r.name}${r.digest ? `@${r.digest}` : r.tag ? `:${r.tag}` : ''}`;

/** A policy.json docker scope: "", *.domain, host[:port], host/namespace…, or a full reference (`bare`: no tag or digest). */
function validScope(scope: string, bare = false): boolean {
  if (scope === '') return true;
  if (scope.startsWith('*.')) return /^[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*$/.test(scope.slice(2));
  const slash = scope.indexOf('/');
  if (slash < 0) return isRegistryHost(scope);
  try {
    const r = splitReference(scope, { qualified: true });
    return !bare || (r.tag === null && r.digest === null);
  } catch {
    return false;
  }
}

/** The image as policy.json scopes see it: a digest wins over a tag (docker references cannot hold both). */
export function policyName(ref: ImageReference): DockerName {
  return { name: `${ref.registry}/${ref.repository}`, tag: ref.digest ? null : (ref.tag ?? 'latest'), digest: ref.digest };
}

/** Scopes to look up, most specific first: the reference, the repository, each namespace, the host, *.domain wildcards. */
export function scopesOf(r: DockerName): string[] {
  const out = [formatDockerName(r)];
  let name = r.name;
  for (;;) {
    out.push(name);
    const i = name.lastIndexOf('/');
    if (i < 0) break;
    name = name.slice(0, i);
  }
  // Wildcards match domains only: the port (if any) is dropped first.
  let domain = name.replace(/:\d+$/, '');
  for (let i = domain.indexOf('.'); i >= 0; i = domain.indexOf('.')) {
    domain = domain.slice(i + 1);
    out.push(`*.${domain}`);
  }
  return out;
}

/** The requirements for `ref` under transport "docker", and the entry that holds them. */
export function requirementsFor(policy: ImagePolicy, ref: DockerName): ApplicablePolicy {
  const scopes = policy.transports.get('docker');
  if (scopes) {
    for (const s of [...scopesOf(ref), '']) {
      const reqs = scopes.get(s);
      if (reqs) return { file: policy.file, entry: `transports.docker[${quote(s)}]`, requirements: reqs };
    }
  }
  return { file: policy.file, entry: 'default', requirements: policy.default };
}

/**
 * Whether a signature's claimed identity fits the image under `signedIdentity`
 * (containers-policy.json(5) "signedIdentity"); null when it fits, else why not.
 */
export function identityMismatch(id: SignedIdentity, image: DockerName, signed: DockerName): string | null {
  const exact = (a: DockerName, b: DockerName) => (a.tag !== null || a.digest !== null) && formatDockerName(a) === formatDockerName(b);
  const repoDigestOrExact = (intended: DockerName) => (intended.digest ? signed.name === intended.name : exact(intended, signed));
  let ok: boolean;
  switch (id.type) {
    case 'matchExact':
      ok = exact(image, signed);
      break;
    case 'matchRepoDigestOrExact':
      ok = repoDigestOrExact(image);
      break;
    case 'matchRepository':
      ok = signed.name === image.name;
      break;
    case 'exactReference': {
      const want = parseDockerName(id.dockerReference)!;
      ok = exact(want, signed);
      break;
    }
    case 'exactRepository':
      ok = signed.name === parseDockerName(id.dockerRepository)!.name;
      break;
    case 'remapIdentity': {
      // The image's name under `prefix` is read as if it were under `signedPrefix`.
      const p = id.prefix;
      const remapped = image.name === p || image.name.startsWith(`${p}/`) ? { ...image, name: id.signedPrefix + image.name.slice(p.length) } : image;
      ok = repoDigestOrExact(remapped);
      break;
    }
  }
  return ok ? null : `it is signed for ${formatDockerName(signed)}, which signedIdentity ${id.type} does not accept for ${formatDockerName(image)}`;
}
