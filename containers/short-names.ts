// Short names (no registry: "busybox", "library/busybox:1.36") qualified as containers do:
// an [aliases] entry first (registries.conf, its drop-ins, shortnames.conf), else the
// unqualified-search-registries under short-name-mode. atomhostd has no terminal to ask
// on, so in enforcing mode (atomhost's default) more than one candidate is an error that
// lists them; permissive and disabled try them in order.
import { AtomhostError } from '../core/errors.js';
import { DOCKER_HUB, splitReference, type ImageReference } from './reference.js';
import type { RegistriesConf } from './registries-conf.js';

export interface NameResolution {
  /** What the user wrote. */
  input: string;
  /** Fully qualified names to try, in order (one unless the mode allows several). */
  candidates: ImageReference[];
  rationale: 'qualified' | 'alias' | 'search';
  /** The file:line that decided it (null for a qualified name). */
  origin: string | null;
}

export class ShortNameError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown>) {
    super('AH_ERR_INVALID_ARGUMENT', message, { details });
    this.name = 'ShortNameError';
  }
}

const qualify = (registry: string, path: string, tag: string | null, digest: string | null): ImageReference => {
  const repository = registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
  return { registry, repository, tag: tag ?? (digest ? null : 'latest'), digest };
};

export function resolveName(conf: RegistriesConf, input: string): NameResolution {
  const r = splitReference(input);
  if (r.registry !== null) return { input, candidates: [qualify(r.registry, r.repository, r.tag, r.digest)], rationale: 'qualified', origin: null };
  // The tag and digest are not part of the alias name; they go onto what it names.
  const alias = conf.aliases.get(r.repository);
  if (alias) {
    const a = splitReference(alias.value, { qualified: true, what: `alias of ${r.repository}` });
    return { input, candidates: [qualify(a.registry!, a.repository, r.tag, r.digest)], rationale: 'alias', origin: alias.origin };
  }
  const where = conf.files.length ? conf.files.join(', ') : 'registries.conf (no file was found)';
  const search = conf.search.registries;
  if (search.length === 0) {
    throw new ShortNameError(`short name ${JSON.stringify(input)} has no alias and no unqualified-search-registries are defined (read: ${where}); use a fully qualified name such as docker.io/library/${r.repository}`, { image: input });
  }
  const candidates = search.map((reg) => qualify(reg, r.repository, r.tag, r.digest));
  const mode = conf.shortNameMode.mode;
  if (candidates.length > 1 && mode === 'enforcing') {
    const list = candidates.map((c) => `${c.registry}/${c.repository}`).join(', ');
    throw new ShortNameError(
      `short name ${JSON.stringify(input)} is ambiguous: it could be ${list} (unqualified-search-registries at ${conf.search.origin}; short-name-mode enforcing${conf.shortNameMode.origin ? ` at ${conf.shortNameMode.origin}` : ', the default'}); give the full name, or add an alias in a registries.conf.d drop-in`,
      { image: input, candidates: candidates.map((c) => `${c.registry}/${c.repository}`) },
    );
  }
  return { input, candidates, rationale: 'search', origin: conf.search.origin };
}
