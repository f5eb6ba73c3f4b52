// Image references, parsed like distribution's reference grammar:
// [registry[:port]/]path[:tag][@sha256:digest]. A first component with a dot, a colon
// or "localhost" is a registry; a name without one is a short name, which only
// registries.conf can qualify (containers/short-names.ts), never a built-in default.
import { InvalidArgumentError } from '../core/errors.js';

export interface ImageReference {
  registry: string;
  /** Repository path within the registry (library/ added for Docker Hub single names). */
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** A reference as the user wrote it: `registry` is null for a short name. */
export interface SplitReference extends Omit<ImageReference, 'registry'> {
  registry: string | null;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

export const DOCKER_HUB = 'docker.io';

/** host[:port] as a registry is named (DNS name, IPv4, or [IPv6]). */
export const isRegistryHost = (s: string): boolean => HOST.test(s);

/**
 * Splits a reference. With `qualified`, the first component is always the registry (a
 * registries.conf location such as "mirror/foo" names host "mirror").
 */
export function splitReference(ref: string, opts: { qualified?: boolean; what?: string } = {}): SplitReference {
  const bad = (why: string) => new InvalidArgumentError(`invalid ${opts.what ?? 'image reference'} ${JSON.stringify(ref)}: ${why}`, { field: 'image', value: ref });
  if (!ref || /\s/.test(ref)) throw bad('empty or contains spaces');
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256:<64 hex>');
  }
  let registry: string | null = null;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (opts.qualified || first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!HOST.test(first)) throw bad(`bad registry host ${JSON.stringify(first)}`);
      registry = first === 'index.docker.io' ? DOCKER_HUB : first;
      rest = rest.slice(slash + 1);
    }
  } else if (opts.qualified) {
    throw bad('it names no registry');
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag ${JSON.stringify(tag)}`);
  }
  if (!rest || rest.split('/').some((c) => !PATH_COMPONENT.test(c))) throw bad('the repository name must be lowercase letters, digits and separators');
  // Docker Hub's single names live under library/ (as docker and containers/image normalize).
  if (registry === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`;
  return { registry, repository: rest, tag, digest };
}

/**
 * Parses a fully qualified reference (a tag defaults to latest). A short name is an
 * error here: resolve it first (containers/short-names.ts).
 */
export function parseReference(ref: string, opts: { qualified?: boolean; what?: string } = {}): ImageReference {
  const r = splitReference(ref, opts);
  if (r.registry === null) {
    throw new InvalidArgumentError(`invalid image reference ${JSON.stringify(ref)}: it is a short name (no registry); it must be resolved through registries.conf first`, { field: 'image', value: ref });
  }
  return { ...r, registry: r.registry, tag: r.tag ?? (r.digest ? null : 'latest') };
}

export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** registry/repository, without tag or digest. */
export function repositoryName(r: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${r.registry}/${r.repository}`;
}
