// Every pull starts here: the name as the user wrote it is qualified (short names through
// aliases or the search registries), matched to its [[registry]] in registries.conf, and
// fetched from its mirrors, then its primary location, in order, the first that answers.
// The name an image is recorded under is the qualified, logical one (docker.io/library/
// busybox:1.36), never a mirror's or a rewritten location's: those are the host's
// configuration, read again at every pull.
import { NotFoundError } from '../core/errors.js';
import { ImagePolicyRefusedError, RegistryError } from './errors.js';
import { checkSignatures, policyFor, type PolicyCheck } from './image-signatures.js';
import { DOCKER_HUB, formatReference, type ImageReference } from './reference.js';
import { BlockedRegistryError, loadRegistriesConf, pullSources, type PullSource, type RegistriesConf, type RegistryEntry, type SkippedMirror } from './registries-conf.js';
import { noteLegacyRegistriesYaml, settingsFor } from './registries.js';
import { RegistryClient, type ResolvedImage } from './registry.js';
import { resolveName, type NameResolution } from './short-names.js';

/** The host a registry name is served from: Docker Hub's API is not at docker.io itself. */
export const endpointHost = (registry: string): string => (registry === DOCKER_HUB ? 'registry-1.docker.io' : registry);

export interface OpenedImage {
  /** The logical, fully qualified name (recorded in the revision and the store). */
  name: ImageReference;
  /** Where it was fetched from. */
  source: PullSource;
  client: RegistryClient;
  resolved: ResolvedImage;
  resolution: NameResolution;
}

export interface ResolvePlan {
  resolution: NameResolution;
  candidates: { name: ImageReference; entry: RegistryEntry | null; sources: PullSource[]; skipped: SkippedMirror[]; blocked: string | null }[];
  files: string[];
}

/** What a name resolves to, without touching the network (`atomhost container resolve`). */
export function planImage(input: string, opts: { digest?: string; conf?: RegistriesConf } = {}): ResolvePlan {
  const conf = opts.conf ?? loadRegistriesConf();
  const resolution = resolveName(conf, input);
  const candidates = resolution.candidates.map((c) => {
    const name = opts.digest ? { ...c, digest: opts.digest } : c;
    try {
      return { name, ...pullSources(conf, name), blocked: null };
    } catch (err) {
      if (err instanceof BlockedRegistryError) return { name, entry: null, sources: [], skipped: [], blocked: err.message };
      throw err;
    }
  });
  return { resolution, candidates, files: conf.files };
}

export function clientFor(source: PullSource): RegistryClient {
  const host = source.reference.registry;
  return new RegistryClient(endpointHost(host), settingsFor(host, source.insecure));
}

/**
 * Resolves an image (optionally pinned to a digest) through registries.conf and opens it
 * at the first source that has it. A blocked name or an ambiguous short name throws
 * before any request; when every source fails, the error lists each one. policy.json is
 * applied to the logical name: a `reject` scope refuses before any request, signatures are
 * checked on the manifest before anything of the image is stored (a refusal is final for
 * that name, as in containers/image: the next mirror is not tried).
 */
export async function openImage(input: string, opts: { digest?: string; signal?: AbortSignal; conf?: RegistriesConf } = {}): Promise<OpenedImage> {
  noteLegacyRegistriesYaml();
  const conf = opts.conf ?? loadRegistriesConf();
  const resolution = resolveName(conf, input);
  const failures: { where: string; err: unknown }[] = [];
  for (const c of resolution.candidates) {
    const name = opts.digest ? { ...c, digest: opts.digest } : c;
    // A blocked candidate refuses the whole pull: it is never skipped for the next one.
    const { sources } = pullSources(conf, name);
    let policy: PolicyCheck | null;
    try {
      policy = policyFor(name);
    } catch (err) {
      // Refused by policy: another short-name candidate may still be allowed (podman tries them all).
      if (!(err instanceof ImagePolicyRefusedError) || resolution.candidates.length === 1) throw err;
      failures.push({ where: formatReference(name), err });
      continue;
    }
    for (const source of sources) {
      const client = clientFor(source);
      let resolved: ResolvedImage;
      try {
        resolved = await client.resolve(source.reference, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        failures.push({ where: `${source.kind} ${formatReference(source.reference)}`, err });
        continue;
      }
      try {
        if (policy) await checkSignatures(policy, source.reference, resolved.index ?? { digest: resolved.digest, bytes: resolved.manifestBytes }, opts.signal, client);
        return { name, source, client, resolved, resolution };
      } catch (err) {
        if (!(err instanceof ImagePolicyRefusedError) || resolution.candidates.length === 1) throw err;
        failures.push({ where: `${source.kind} ${formatReference(source.reference)}`, err });
        break;
      }
    }
  }
  // A host still configured the old way: say so where the user sees it, in the error.
  const legacy = noteLegacyRegistriesYaml(() => {});
  if (legacy) {
    const last = failures.map((f) => `${f.where}: ${(f.err as Error).message}`).join('; ');
    throw new RegistryError(`could not pull ${input} (${last}); ${legacy.replace(/^warning: /, 'note: ')}`, { image: input }, failures[0]?.err);
  }
  // One source tried: its own error, unchanged.
  if (failures.length === 1) throw failures[0].err;
  const list = failures.map((f) => `${f.where}: ${(f.err as Error).message}`).join('; ');
  const msg = `could not pull ${input}: tried ${failures.length} sources (${list})`;
  if (failures.every((f) => f.err instanceof NotFoundError)) throw new NotFoundError(msg, { image: input });
  throw new RegistryError(msg, { image: input, tried: failures.map((f) => f.where) });
}
