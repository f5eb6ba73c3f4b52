// Image references, parsed like distribution's reference grammar:
// [registry[:port]/]path[:tag][@sha256:digest]. A first component with a dot, a colon
// or "localhost" is a registry; otherwise the default registry is used.
import { InvalidArgumentError } from '../core/errors.js';

export interface ImageReference {
  registry: string;
  /** Repository path within the registry (library/ added for Docker Hub short names). */
  repository: string;
  tag: string | null;
  digest: string | null;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export const DEFAULT_REGISTRY = process.env.ATOMHOST_DEFAULT_REGISTRY ?? 'docker.io';

export function parseReference(ref: string, defaultRegistry = DEFAULT_REGISTRY): ImageReference {
  const bad = (why: string) => new InvalidArgumentError(`invalid image reference ${JSON.stringify(ref)}: ${why}`, { field: 'image', value: ref });
  if (!ref || /\s/.test(ref)) throw bad('empty or contains spaces');
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256:<64 hex>');
  }
  let registry = defaultRegistry;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag ${JSON.stringify(tag)}`);
  }
  if (!rest || rest.split('/').some((c) => !PATH_COMPONENT.test(c))) throw bad('the repository name must be lowercase letters, digits and separators');
  if (registry === 'docker.io' && !rest.includes('/')) rest = `library/${rest}`;
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: rest, tag, digest };
}

export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}
