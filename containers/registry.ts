// The one registry client: the OCI distribution API v2 over undici. Token (Bearer) and
// Basic auth, OCI and Docker schema 2 manifests, indexes with platform selection, blobs
// verified by digest and size while they stream to disk, resumed with Range on retry.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { truncate, rm } from 'node:fs/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { NotFoundError } from '../core/errors.js';
import { dispatcherFor, explainTlsError, probeTls } from './certs-d.js';
import { DigestMismatchError, RegistryError, UnsupportedMediaTypeError } from './errors.js';
import { formatReference, type ImageReference } from './reference.js';
import { settingsFor, type RegistrySettings } from './registries.js';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

export const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string; User?: string; Labels?: Record<string, string> | null };
  rootfs?: { type: string; diff_ids: string[] };
}

export interface ResolvedImage {
  reference: ImageReference;
  /** Digest of the platform manifest that will run. */
  digest: string;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
  /** The index the reference named, when it named one (signatures sign what the tag names). */
  index: { digest: string; bytes: Buffer } | null;
}

// Redirects (registries send blob fetches to their storage) are followed by #send itself,
// so that none can downgrade https to http and credentials never go to another host.
const dispatcher = new Agent({ connections: 8 });
const MAX_REDIRECTS = 5;

/** GET/HEAD through the dispatcher certs.d gives the URL's host; a TLS failure names the file that would fix it. */
async function requestTls(url: URL, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod }, what: string, details: Record<string, unknown>): Promise<Dispatcher.ResponseData<unknown>> {
  const { dispatcher: d, tls } = url.protocol === 'https:' ? dispatcherFor(url.host, dispatcher) : { dispatcher, tls: null };
  return request(url, { ...opts, dispatcher: d }).catch(async (err: unknown) => {
    let tlsWhy = tls && explainTlsError(url.host, err, tls);
    // A dropped TLS connection may be a refused client certificate: read the server's alert.
    if (tls && !tlsWhy && (err as { code?: string }).code === 'UND_ERR_SOCKET') tlsWhy = explainTlsError(url.host, await probeTls(url.host, tls), tls);
    throw new RegistryError(`${what}: ${tlsWhy ?? (err as Error).message}`, details, err);
  });
}
/** Manifests, indexes and configs are small JSON documents: a larger answer is refused while it streams. */
export const MAX_MANIFEST_BYTES = Number(process.env.ATOMHOST_MAX_MANIFEST_BYTES ?? 4 * 1024 * 1024);
export const MAX_CONFIG_BYTES = Number(process.env.ATOMHOST_MAX_CONFIG_BYTES ?? 8 * 1024 * 1024);

/** containers/image's bounds on a signature extension answer (iolimits.MaxSignatureListBodySize). */
export const MAX_SIGNATURE_LIST_BYTES = Number(process.env.ATOMHOST_MAX_SIGNATURE_LIST_BYTES ?? 4 * 1024 * 1024);
const MAX_EXTENSION_SIGNATURES = 64;

/** The digest algorithms atomhost can verify; any other is refused rather than trusted. */
const ALGORITHMS: Record<string, RegExp> = { sha256: /^[0-9a-f]{64}$/, sha512: /^[0-9a-f]{128}$/ };

/** The algorithm of a digest string, or a RegistryError naming what is wrong with it. */
export function digestAlgorithm(digest: string, what: string): string {
  const [algo, hex] = digest.split(':');
  if (!ALGORITHMS[algo]) throw new RegistryError(`${what}: digest algorithm ${JSON.stringify(algo)} cannot be verified (sha256, sha512)`, { digest });
  if (!ALGORITHMS[algo].test(hex ?? '')) throw new RegistryError(`${what}: malformed digest ${JSON.stringify(digest)}`, { digest });
  return algo;
}

const digestOf = (algo: string, b: Buffer) => `${algo}:${createHash(algo).update(b).digest('hex')}`;

/** A manifest, index, config or token must arrive within this time, however slowly it trickles. */
export const DOCUMENT_TIMEOUT_MS = Number(process.env.ATOMHOST_REGISTRY_DOCUMENT_TIMEOUT_MS ?? 60_000);

/**
 * Reads a response body, giving up (and dropping the connection) once it passes `limit`
 * bytes, at once when its Content-Length already says it will, or when it has not all
 * arrived within DOCUMENT_TIMEOUT_MS. A body that breaks off is a RegistryError too.
 */
async function readCapped(res: Dispatcher.ResponseData<unknown>, limit: number, what: string): Promise<Buffer> {
  const body = res.body;
  // Errors of a body dropped here are answered by the throw below, never by an uncaught 'error' event.
  body.on('error', () => {});
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    body.destroy();
    throw new RegistryError(`${what} is larger than ${limit} bytes (Content-Length ${declared}): refused`, { limit });
  }
  const late = new RegistryError(`${what} did not arrive within ${DOCUMENT_TIMEOUT_MS / 1000} s: refused`, { timeoutMs: DOCUMENT_TIMEOUT_MS });
  const timer = setTimeout(() => body.destroy(late), DOCUMENT_TIMEOUT_MS);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > limit) {
        body.destroy();
        throw new RegistryError(`${what} is larger than ${limit} bytes: refused`, { limit });
      }
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError(`${what}: the transfer broke off after ${n} bytes (${(err as Error).message})`, { received: n }, err);
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks);
}

/** The platforms an index offers, for an error message (bounded: an index may list thousands). */
function platformsOf(entries: Descriptor[]): string {
  const part = (v: unknown) => (typeof v === 'string' && v ? v : '?');
  const shown = entries.slice(0, 10).map((d) => `${part(d.platform?.os)}/${part(d.platform?.architecture)}`);
  return `${shown.join(', ') || 'nothing'}${entries.length > 10 ? ` and ${entries.length - 10} more` : ''}`;
}

/** A JSON document that must be an object (manifests, indexes, configs), or a RegistryError naming it. */
function parseObject(bytes: Buffer, what: string, image: string): Record<string, unknown> & { mediaType?: unknown } {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError(`${what} is not JSON`, { image });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new RegistryError(`${what} is not a JSON object`, { image });
  return doc as Record<string, unknown>;
}

/** The fields of an image config atomhost reads, type-checked, so a lying config is an error here and not a crash later. */
function checkConfig(doc: Record<string, unknown>, image: string): ImageConfig {
  const problems: string[] = [];
  const strings = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  const c = doc.config;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'object' || Array.isArray(c)) problems.push('config must be an object');
    else {
      const cc = c as Record<string, unknown>;
      for (const k of ['Entrypoint', 'Cmd', 'Env']) if (!strings(cc[k])) problems.push(`config.${k} must be a list of strings`);
      for (const k of ['WorkingDir', 'User']) if (cc[k] !== undefined && cc[k] !== null && typeof cc[k] !== 'string') problems.push(`config.${k} must be a string`);
      const labels = cc.Labels;
      if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string'))) problems.push('config.Labels must map names to strings');
    }
  }
  for (const k of ['architecture', 'os']) if (doc[k] !== undefined && typeof doc[k] !== 'string') problems.push(`${k} must be a string`);
  if (problems.length) throw new RegistryError(`the config of ${image} is malformed: ${problems.join('; ')}`, { image, problems });
  return doc as ImageConfig;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export class RegistryClient {
  readonly registry: string;
  readonly #settings: RegistrySettings;
  readonly #base: string;
  #authorization: string | null = null;
  #supportsSignatures: Promise<boolean> | null = null;

  constructor(registry: string, settings: RegistrySettings = settingsFor(registry)) {
    this.registry = registry;
    this.#settings = settings;
    this.#base = `${settings.insecure ? 'http' : 'https'}://${registry}`;
  }

  async #send(method: 'GET' | 'HEAD', path: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Dispatcher.ResponseData<unknown>> {
    const base = new URL(this.#base);
    const go = async () => {
      let url = new URL(`${this.#base}${path}`);
      for (let hop = 0; ; hop++) {
        // Credentials go to the registry itself, never to a host it redirects to.
        const auth = this.#authorization && url.host === base.host ? { authorization: this.#authorization } : {};
        const res = await requestTls(url, { method, headers: { ...headers, ...auth }, signal }, `registry ${this.registry} is unreachable`, { registry: this.registry });
        const location = res.headers.location;
        if (res.statusCode < 300 || res.statusCode >= 400 || !location) return res;
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) throw new RegistryError(`registry ${this.registry}: more than ${MAX_REDIRECTS} redirects for ${path}`, { registry: this.registry });
        const next = new URL(String(location), url);
        if (next.protocol !== 'https:' && (next.protocol !== 'http:' || url.protocol === 'https:')) {
          throw new RegistryError(`registry ${this.registry} redirected ${path} from ${url.protocol}//${url.host} to ${next.protocol}//${next.host}: refused (a redirect may not leave https)`, { registry: this.registry, location: next.href });
        }
        url = next;
      }
    };
    let res = await go();
    if (res.statusCode === 401) {
      const challenge = String(res.headers['www-authenticate'] ?? '');
      await res.body.dump();
      await this.#authenticate(challenge, path, signal);
      res = await go();
      if (res.statusCode === 401) {
        await res.body.dump();
        const creds = await this.#settings.credentials();
        throw new RegistryError(`registry ${this.registry} refused the credentials${creds ? ` from ${creds.source}` : ` (none found in ${this.#settings.credentialSources})`}`, { registry: this.registry });
      }
    }
    return res;
  }

  async #authenticate(challenge: string, path: string, signal?: AbortSignal): Promise<void> {
    const creds = await this.#settings.credentials();
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : null;
    if (/^basic/i.test(challenge)) {
      if (!basic) throw new RegistryError(`registry ${this.registry} needs credentials; none were found in ${this.#settings.credentialSources}`, { registry: this.registry });
      this.#authorization = basic;
      return;
    }
    if (!/^bearer/i.test(challenge)) throw new RegistryError(`registry ${this.registry} asks for an unsupported authentication: ${challenge.split(' ')[0] || '(none)'}`);
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) throw new RegistryError(`registry ${this.registry} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw new RegistryError(`registry ${this.registry} sent a Bearer realm that is not a URL: ${JSON.stringify(params.realm)}`);
    }
    // A token (and the credentials sent for it) never travels in clear for an https registry.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.#settings.insecure)) {
      throw new RegistryError(`registry ${this.registry} sent the token realm ${url.protocol}//${url.host} for ${path}: refused (the realm of an https registry must be https)`, { registry: this.registry, realm: url.href, path });
    }
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const res = await requestTls(url, { headers: basic ? { authorization: basic } : {}, signal }, `token service ${url.host} is unreachable`, {});
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(`token service ${url.host} refused a token for ${this.registry} (HTTP ${res.statusCode})`);
    }
    let body: { token?: string; access_token?: string };
    try {
      body = JSON.parse((await readCapped(res, MAX_MANIFEST_BYTES, `the token from ${url.host}`)).toString('utf8')) as typeof body;
    } catch (err) {
      throw err instanceof RegistryError ? err : new RegistryError(`token service ${url.host} answered with something that is not JSON`);
    }
    const token = body?.token ?? body?.access_token;
    if (typeof token !== 'string' || !token || /[\r\n]/.test(token)) throw new RegistryError(`token service ${url.host} returned no token`);
    this.#authorization = `Bearer ${token}`;
  }

  /**
   * Whether the registry offers the signature API extension: its /v2/ answer carries
   * `X-Registry-Supports-Signatures: 1` (as containers/image detects it; OpenShift's
   * registry does). Asked once per client.
   */
  supportsSignatures(signal?: AbortSignal): Promise<boolean> {
    this.#supportsSignatures ??= (async () => {
      const res = await this.#send('GET', '/v2/', {}, signal);
      await res.body.dump();
      return String(res.headers['x-registry-supports-signatures'] ?? '') === '1';
    })();
    return this.#supportsSignatures;
  }

  /** Where the signature extension lists a manifest's signatures. */
  signaturesUrl(repository: string, digest: string): string {
    return `${this.#base}/extensions/v2/${repository}/signatures/${digest}`;
  }

  /**
   * The atomic (simple signing) signatures of manifest `digest` from the signature API
   * extension: GET /extensions/v2/NAME/signatures/DIGEST, {"signatures": [{"version": 2,
   * "type": "atomic", "name", "content": base64}]}, the list capped at MAX_SIGNATURE_LIST_BYTES
   * and MAX_EXTENSION_SIGNATURES entries. Other versions and types are skipped (containers/image
   * does the same); anything malformed is a RegistryError.
   */
  async extensionSignatures(repository: string, digest: string, signal?: AbortSignal): Promise<{ name: string; bytes: Buffer }[]> {
    const what = `the signatures of ${this.registry}/${repository}@${digest} (signature extension)`;
    digestAlgorithm(digest, what);
    const res = await this.#send('GET', `/extensions/v2/${repository}/signatures/${digest}`, { accept: 'application/json' }, signal);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(`${what}: HTTP ${res.statusCode}`, { registry: this.registry });
    }
    const doc = parseObject(await readCapped(res, MAX_SIGNATURE_LIST_BYTES, what), what, `${this.registry}/${repository}`);
    if (!Array.isArray(doc.signatures)) throw new RegistryError(`${what}: "signatures" must be a list`, { registry: this.registry });
    if (doc.signatures.length > MAX_EXTENSION_SIGNATURES) throw new RegistryError(`${what}: ${doc.signatures.length} signatures, more than ${MAX_EXTENSION_SIGNATURES}: refused`, { registry: this.registry });
    const out: { name: string; bytes: Buffer }[] = [];
    for (const [i, raw] of (doc.signatures as unknown[]).entries()) {
      const sig = raw as Record<string, unknown> | null;
      if (!sig || typeof sig !== 'object' || Array.isArray(sig)) throw new RegistryError(`${what}: signatures[${i}] must be an object`, { registry: this.registry });
      if (sig.version !== 2 || sig.type !== 'atomic') continue;
      if (typeof sig.content !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(sig.content) || sig.content.length % 4 !== 0) throw new RegistryError(`${what}: signatures[${i}].content must be base64`, { registry: this.registry });
      const name = typeof sig.name === 'string' && /^[\x21-\x7e]{1,200}$/.test(sig.name) ? ` (${sig.name})` : '';
      out.push({ name: `extension signature ${i + 1}${name}`, bytes: Buffer.from(sig.content, 'base64') });
    }
    return out;
  }

  /** Fetches a manifest by tag or digest and checks it against the digest it was asked by. */
  async manifest(repository: string, reference: string, signal?: AbortSignal): Promise<{ mediaType: string; digest: string; bytes: Buffer }> {
    const accept = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');
    const pinned = reference.includes(':');
    const name = `${this.registry}/${repository}${pinned ? '@' : ':'}${reference}`;
    // A digest atomhost cannot verify is refused before anything is fetched by it.
    const algo = pinned ? digestAlgorithm(reference, `manifest of ${name}`) : null;
    const res = await this.#send('GET', `/v2/${repository}/manifests/${reference}`, { accept }, signal);
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new NotFoundError(`image ${name} was not found in registry ${this.registry}`, { image: name });
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(`fetching the manifest of ${name}: HTTP ${res.statusCode}`, { image: name });
    }
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, `the manifest of ${name}`);
    const digest = sha256(bytes);
    // Asked by digest (an index entry, a pinned image): verified with that digest's own algorithm.
    if (algo) {
      const got = digestOf(algo, bytes);
      if (got !== reference) throw new DigestMismatchError(`manifest of ${name}`, reference, got);
    }
    const doc = parseObject(bytes, `the manifest of ${name}`, name);
    const mediaType = doc.mediaType ?? String(res.headers['content-type'] ?? '').split(';')[0];
    if (typeof mediaType !== 'string') throw new RegistryError(`the manifest of ${name} is malformed (mediaType must be a string)`, { image: name });
    return { mediaType, digest, bytes };
  }

  /** Resolves a reference to the manifest and config that run on this platform. */
  async resolve(ref: ImageReference, signal?: AbortSignal, platform = { os: 'linux', architecture: hostArchitecture() }): Promise<ResolvedImage> {
    const name = formatReference(ref);
    let m = await this.manifest(ref.repository, ref.digest ?? ref.tag!, signal);
    let top: ResolvedImage['index'] = null;
    if (m.mediaType === MEDIA.ociIndex || m.mediaType === MEDIA.dockerList) {
      top = { digest: m.digest, bytes: m.bytes };
      const index = JSON.parse(m.bytes.toString('utf8')) as { manifests: Descriptor[] };
      if (!Array.isArray(index.manifests) || index.manifests.some((d) => !d || typeof d.digest !== 'string')) throw new RegistryError(`the index of ${name} is malformed (manifests must be a list of descriptors)`, { image: name });
      const pick = index.manifests.find((d) => d.platform?.os === platform.os && d.platform?.architecture === platform.architecture);
      if (!pick) throw new NotFoundError(`${name} has no image for ${platform.os}/${platform.architecture} (it has: ${platformsOf(index.manifests)})`, { image: name });
      // An entry's digest is what makes the manifest it names trustworthy: one that is not a
      // digest atomhost verifies (a tag, md5:…) is refused, never fetched.
      digestAlgorithm(pick.digest, `the index of ${name}: entry for ${platform.os}/${platform.architecture}`);
      m = await this.manifest(ref.repository, pick.digest, signal);
    }
    if (m.mediaType !== MEDIA.ociManifest && m.mediaType !== MEDIA.dockerManifest) throw new UnsupportedMediaTypeError(name, m.mediaType || '(none)');
    const manifest = JSON.parse(m.bytes.toString('utf8')) as ImageManifest;
    const badDescriptor = (d: Descriptor | undefined) => !d || typeof d.digest !== 'string' || !Number.isSafeInteger(d.size) || d.size < 0;
    if (!Array.isArray(manifest.layers) || badDescriptor(manifest.config) || manifest.layers.some(badDescriptor)) {
      throw new RegistryError(`the manifest of ${name} is malformed (config and layers must be descriptors with a digest and a size)`, { image: name });
    }
    // Every digest is checked before it names a request, a file or a ref.
    digestAlgorithm(manifest.config.digest, `the manifest of ${name}: config`);
    for (const l of manifest.layers) {
      digestAlgorithm(l.digest, `the manifest of ${name}: layer`);
      if (!LAYER_TYPES.has(l.mediaType)) throw new UnsupportedMediaTypeError(`${name} layer ${l.digest}`, typeof l.mediaType === 'string' ? l.mediaType : (JSON.stringify(l.mediaType) ?? '(none)'));
    }
    const configBytes = await this.blobBuffer(ref.repository, manifest.config, signal);
    const config = checkConfig(parseObject(configBytes, `the config of ${name}`, name), name);
    return { reference: ref, digest: m.digest, manifest, manifestBytes: m.bytes, config, configBytes, index: top };
  }

  async blobBuffer(repository: string, d: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    const res = await this.#send('GET', `/v2/${repository}/blobs/${d.digest}`, {}, signal);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(`fetching blob ${d.digest} of ${this.registry}/${repository}: HTTP ${res.statusCode}`, { blob: d.digest });
    }
    const algo = digestAlgorithm(d.digest, `blob of ${this.registry}/${repository}`);
    const bytes = await readCapped(res, Math.min(MAX_CONFIG_BYTES, Math.max(0, d.size ?? MAX_CONFIG_BYTES)), `blob ${d.digest} of ${this.registry}/${repository}`);
    const got = digestOf(algo, bytes);
    if (got !== d.digest) throw new DigestMismatchError(`blob ${d.digest} of ${this.registry}/${repository}`, d.digest, got);
    return bytes;
  }

  /**
   * Streams a blob to `dest`, hashing as it goes; a broken transfer resumes with a Range
   * request (up to 3 tries). A wrong size or digest removes the file and throws.
   */
  async blobToFile(repository: string, d: Descriptor, dest: string, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<void> {
    const what = `layer ${d.digest} of ${this.registry}/${repository}`;
    const algo = digestAlgorithm(d.digest, what);
    if (!Number.isSafeInteger(d.size) || d.size < 0) throw new RegistryError(`${what}: the manifest gives no valid size`, { blob: d.digest });
    let hash = createHash(algo);
    let written = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.#send('GET', `/v2/${repository}/blobs/${d.digest}`, written > 0 ? { range: `bytes=${written}-` } : {}, signal);
        if (res.statusCode === 404) {
          await res.body.dump();
          throw new NotFoundError(`${what} is missing from the registry`, { blob: d.digest });
        }
        if (res.statusCode !== 200 && res.statusCode !== 206) {
          await res.body.dump();
          throw new RegistryError(`${what}: HTTP ${res.statusCode}`, { blob: d.digest });
        }
        if (written > 0 && res.statusCode === 200) {
          // The server ignored the range: start over, within the same tries (a server that
          // always breaks off and ignores ranges must not keep us here forever).
          written = 0;
          hash.destroy();
          hash = createHash(algo);
        }
        const out = createWriteStream(dest, { flags: written > 0 ? 'a' : 'w' });
        try {
          for await (const chunk of res.body) {
            const b = chunk as Buffer;
            written += b.length;
            if (written > d.size) throw new DigestMismatchError(what, `${d.size} bytes`, `more than ${d.size} bytes`);
            hash.update(b);
            if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
            onBytes?.(b.length);
          }
        } finally {
          await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        }
        break;
      } catch (err) {
        if (err instanceof DigestMismatchError || err instanceof NotFoundError || signal?.aborted || attempt >= 3) {
          await rm(dest, { force: true });
          if (err instanceof RegistryError || err instanceof DigestMismatchError || err instanceof NotFoundError) throw err;
          throw new RegistryError(`${what}: the transfer broke off after ${written} of ${d.size} bytes, ${attempt} tries (${(err as Error).message})`, { blob: d.digest, received: written, size: d.size }, err);
        }
        // Keep what arrived (the hash has seen exactly that); the next try asks for the rest.
        await truncate(dest, written).catch(() => {});
      }
    }
    if (written !== d.size) {
      await rm(dest, { force: true });
      throw new DigestMismatchError(`${what} (truncated)`, `${d.size} bytes`, `${written} bytes`);
    }
    const got = `${algo}:${hash.digest('hex')}`;
    if (got !== d.digest) {
      await rm(dest, { force: true });
      throw new DigestMismatchError(what, d.digest, got);
    }
  }
}

export function hostArchitecture(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le' } as Record<string, string>)[process.arch] ?? process.arch;
}
