// "Simple signing" (atomic container signatures, as `skopeo copy --sign-by` and
// `podman push --sign-by` write them) checked against policy.json's signedBy requirements.
// A registry that answers /v2/ with X-Registry-Supports-Signatures: 1 serves them itself
// (GET /extensions/v2/NAME/signatures/DIGEST, containers/registry.ts), preferred as
// containers/image prefers it. Otherwise signatures are found as containers-registries.d(5) says: the most specific `docker` scope
// (else `default-docker`) gives a lookaside URL (file://, http://, https://), under which
// signature N of an image is <url>/<repo path>@<algo>=<hex>/signature-N, N = 1, 2, … until
// one is missing. Each is verified by gpg against a temporary keyring made only of the
// policy's keys (never the user's), then its payload must name the manifest digest that was
// fetched and an identity that signedIdentity accepts. One good signature is enough.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { run } from '../core/exec.js';
import { ImagePolicyRefusedError } from './errors.js';
import { confDir } from './registries-conf.js';
import { formatReference, type ImageReference } from './reference.js';
import {
  identityMismatch,
  ImagePolicyFileError,
  loadImagePolicy,
  parseDockerName,
  policyFile,
  policyName,
  requirementsFor,
  scopesOf,
  type ApplicablePolicy,
  type PolicyKey,
  type Requirement,
} from './image-policy.js';

/** containers/image's own bound on one signature. */
const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
/** More signatures than this for one manifest is an attack, not a key rotation. */
const MAX_SIGNATURES = 64;
const LOOKASIDE_TIMEOUT_MS = 60_000;

// ---- registries.d ----

interface LookasideConfig {
  url: string;
  /** file: key of the entry that gave it. */
  origin: string;
}

/** The lookaside URL for reading `ref`'s signatures (registries.d, most specific scope first), or null. */
export async function lookasideFor(ref: ImageReference, dir = join(confDir(), 'registries.d')): Promise<LookasideConfig | null> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
  } catch {
    return null;
  }
  const docker = new Map<string, LookasideConfig | null>();
  let fallback: LookasideConfig | null | undefined;
  let fallbackFile = '';
  for (const n of names) {
    const file = join(dir, n);
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(file, 'utf8'));
    } catch (err) {
      throw new ImagePolicyFileError(file, '', `is not valid YAML (${(err as Error).message.split('\n')[0]})`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new ImagePolicyFileError(file, '', 'must be a YAML mapping');
    const d = doc as Record<string, unknown>;
    const readUrl = (v: unknown, path: string): LookasideConfig | null => {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ImagePolicyFileError(file, path, 'must be a mapping');
      const ns = v as Record<string, unknown>;
      for (const k of ['lookaside', 'sigstore', 'lookaside-staging', 'sigstore-staging']) {
        if (ns[k] !== undefined && typeof ns[k] !== 'string') throw new ImagePolicyFileError(file, `${path}.${k}`, 'must be a URL string');
      }
      const url = (ns.lookaside ?? ns.sigstore) as string | undefined;
      if (!url) return null;
      if (!/^(file|https?):\/\//.test(url)) throw new ImagePolicyFileError(file, `${path}.${ns.lookaside ? 'lookaside' : 'sigstore'}`, `${JSON.stringify(url)} must be a file://, http:// or https:// URL`);
      return { url, origin: `${file}: ${path}` };
    };
    if (d['default-docker'] !== undefined) {
      if (fallback !== undefined) throw new ImagePolicyFileError(file, 'default-docker', `is also set in ${fallbackFile}; only one file may set it`);
      fallback = readUrl(d['default-docker'], 'default-docker');
      fallbackFile = file;
    }
    if (d.docker !== undefined) {
      if (!d.docker || typeof d.docker !== 'object' || Array.isArray(d.docker)) throw new ImagePolicyFileError(file, 'docker', 'must be a mapping of scopes');
      for (const [scope, v] of Object.entries(d.docker as Record<string, unknown>)) {
        if (docker.has(scope)) throw new ImagePolicyFileError(file, `docker[${JSON.stringify(scope)}]`, 'is configured in two files');
        docker.set(scope, readUrl(v, `docker[${JSON.stringify(scope)}]`));
      }
    }
  }
  for (const s of scopesOf(policyName(ref))) {
    const c = docker.get(s);
    if (c) return c;
  }
  return fallback ?? null;
}

/** URL of signature `n` (1-based) of the manifest `digest` of `ref` under a lookaside base. */
export function signatureUrl(base: string, ref: ImageReference, digest: string, n: number): URL {
  const u = new URL(base);
  const [algo, hex] = digest.split(':');
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${ref.repository}@${algo}=${hex}/signature-${n}`;
  return u;
}

/** Signatures of a manifest from the lookaside; an error (other than "not there") refuses the pull. */
async function fetchSignatures(base: string, ref: ImageReference, digest: string, signal?: AbortSignal): Promise<{ name: string; bytes: Buffer }[]> {
  const out: { name: string; bytes: Buffer }[] = [];
  for (let n = 1; n <= MAX_SIGNATURES; n++) {
    const url = signatureUrl(base, ref, digest, n);
    const name = `signature-${n}`;
    if (url.protocol === 'file:') {
      const st = await stat(url).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
      if (!st) break;
      if (st.size > MAX_SIGNATURE_BYTES) throw new Error(`${url.href} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
      out.push({ name, bytes: await readFile(url) });
      continue;
    }
    const res = await request(url, { method: 'GET', signal, headersTimeout: LOOKASIDE_TIMEOUT_MS, bodyTimeout: LOOKASIDE_TIMEOUT_MS, maxRedirections: 0 } as Parameters<typeof request>[1]).catch((err: unknown) => {
      throw new Error(`${url.href}: ${(err as Error).message}`);
    });
    if (res.statusCode === 404) {
      await res.body.dump();
      break;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`${url.href}: HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > MAX_SIGNATURE_BYTES) {
        res.body.destroy();
        throw new Error(`${url.href} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
    out.push({ name, bytes: Buffer.concat(chunks) });
  }
  return out;
}

/** The registry's side of signatures: the signature API extension (containers/registry.ts's client). */
export interface SignatureSource {
  supportsSignatures(signal?: AbortSignal): Promise<boolean>;
  signaturesUrl(repository: string, digest: string): string;
  extensionSignatures(repository: string, digest: string, signal?: AbortSignal): Promise<{ name: string; bytes: Buffer }[]>;
}

// ---- gpg ----

/** A throwaway GnuPG home holding only the policy's keys; gpg never sees the user's keyring. */
class TempKeyring {
  readonly home: string;
  private constructor(home: string) {
    this.home = home;
  }

  static async create(keys: PolicyKey[]): Promise<TempKeyring> {
    const ring = new TempKeyring(await mkdtemp(join(tmpdir(), 'atomhost-sigverify-')));
    try {
      // One import per key source, so a file that holds no usable key is named as such.
      for (const [i, k] of keys.entries()) {
        const f = join(ring.home, `key${i}`);
        if ('path' in k) {
          const data = await readFile(k.path).catch((err: Error) => {
            throw new Error(`key file ${k.path} cannot be read (${err.message})`);
          });
          await writeFile(f, data);
        } else {
          await writeFile(f, k.data);
        }
        const r = await ring.gpg(['--status-fd', '1', '--import', f]);
        if (!/^\[GNUPG:\] IMPORT_OK /m.test(r.stdout)) throw new Error(`no OpenPGP public key could be imported from ${'path' in k ? k.path : 'keyData'} (${r.stderr.trim().split('\n').pop() ?? `gpg exit ${r.exitCode}`})`);
      }
      return ring;
    } catch (err) {
      await ring.dispose();
      throw err;
    }
  }

  gpg(args: string[]) {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C' };
    return run('gpg', ['--batch', '--no-tty', '--no-autostart', '--homedir', this.home, '--trust-model', 'always', '--no-auto-key-retrieve', ...args], { env });
  }

  /** The payload of a signature made by one of this keyring's keys, or why there is none. */
  async verify(sig: Buffer, name: string): Promise<{ payload: Buffer; fingerprint: string } | string> {
    const sigFile = join(this.home, `${name}.sig`);
    const outFile = join(this.home, `${name}.payload`);
    await writeFile(sigFile, sig);
    try {
      // --max-output: a compressed payload cannot unpack into more than a signature may hold.
      const r = await this.gpg(['--status-fd', '1', '--max-output', String(MAX_SIGNATURE_BYTES), '--yes', '--output', outFile, '--decrypt', sigFile]);
      const status = r.stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice(9).split(' '));
      const has = (k: string) => status.some((s) => s[0] === k);
      if (has('NO_PUBKEY') || (has('ERRSIG') && !has('BADSIG'))) return 'not signed by a key of the policy';
      if (has('BADSIG')) return 'the signature is bad (the signed data was altered)';
      if (has('EXPKEYSIG')) return 'the key that signed it has expired';
      if (has('REVKEYSIG')) return 'the key that signed it is revoked';
      if (has('EXPSIG')) return 'the signature has expired';
      const valid = status.filter((s) => s[0] === 'VALIDSIG');
      // containers/image accepts exactly one signature per signature file.
      if (valid.length !== 1 || status.filter((s) => s[0] === 'GOODSIG').length !== 1 || r.exitCode !== 0) return valid.length > 1 ? 'it holds more than one signature' : 'it is not a valid OpenPGP signature';
      const payload = await readFile(outFile);
      return { payload, fingerprint: valid[0][10] ?? valid[0][1] };
    } finally {
      await rm(sigFile, { force: true });
      await rm(outFile, { force: true });
    }
  }

  async dispose(): Promise<void> {
    await rm(this.home, { recursive: true, force: true });
  }
}

const describeKeys = (keys: PolicyKey[]) => keys.map((k) => ('path' in k ? k.path : 'keyData')).join(', ');

/** The critical fields of an atomic container signature, checked as strictly as containers/image does. */
function parsePayload(payload: Buffer): { digest: string; reference: string } | string {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'its payload is not JSON';
  }
  const obj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  const exactly = (o: Record<string, unknown>, keys: string[]) => Object.keys(o).length === keys.length && keys.every((k) => k in o);
  if (!obj(doc) || !obj(doc.critical) || Object.keys(doc).some((k) => k !== 'critical' && k !== 'optional') || (doc.optional !== undefined && !obj(doc.optional))) return 'its payload is not an atomic container signature';
  const c = doc.critical;
  if (!exactly(c, ['type', 'image', 'identity']) || c.type !== 'atomic container signature') return 'its payload is not an atomic container signature (critical.type)';
  if (!obj(c.image) || !exactly(c.image, ['docker-manifest-digest']) || typeof c.image['docker-manifest-digest'] !== 'string') return 'its payload has no critical.image.docker-manifest-digest';
  if (!obj(c.identity) || !exactly(c.identity, ['docker-reference']) || typeof c.identity['docker-reference'] !== 'string') return 'its payload has no critical.identity.docker-reference';
  return { digest: c.image['docker-manifest-digest'], reference: c.identity['docker-reference'] };
}

/** Whether `digest` (any algorithm the signer chose, sha256 or sha512) is the digest of these manifest bytes. */
function digestMatches(digest: string, manifest: Buffer): boolean {
  const [algo, hex] = digest.split(':');
  if ((algo !== 'sha256' && algo !== 'sha512') || !hex) return false;
  return createHash(algo).update(manifest).digest('hex') === hex;
}

// ---- enforcement ----

export interface PolicyCheck {
  /** The logical name (what policy.json scopes and signature identities speak of). */
  image: ImageReference;
  applicable: ApplicablePolicy;
}

const refused = (image: ImageReference, a: ApplicablePolicy, where: string, why: string) =>
  new ImagePolicyRefusedError(formatReference(image), a.file, where, why);

/**
 * The policy for an image, checked before anything is fetched: a `reject` scope refuses
 * here. Null when the host has no policy.json (atomhost then accepts; docs/containers.md).
 */
export function policyFor(image: ImageReference): PolicyCheck | null {
  const policy = loadImagePolicy(policyFile());
  if (!policy) return null;
  const applicable = requirementsFor(policy, policyName(image));
  for (const [i, r] of applicable.requirements.entries()) {
    if (r.type === 'reject') throw refused(image, applicable, applicable.entry, 'rejected');
    if (r.type === 'sigstoreSigned') throw refused(image, applicable, `${applicable.entry}[${i}]`, 'sigstoreSigned is not supported by atomhost (only signedBy GPGKeys), so nothing it covers can be pulled');
  }
  return { image, applicable };
}

/**
 * Checks the fetched manifest against every requirement (all must pass). `source` is where
 * it came from (registries.d is looked up for it, as containers/image does for a mirror);
 * `manifest` is the top-level one the tag or digest named (an index when there is one).
 */
export async function checkSignatures(check: PolicyCheck, source: ImageReference, manifest: { digest: string; bytes: Buffer }, signal?: AbortSignal, client?: SignatureSource): Promise<void> {
  const { image, applicable } = check;
  const signedBy = applicable.requirements.map((r, i) => [r, i] as const).filter((x): x is readonly [Extract<Requirement, { type: 'signedBy' }>, number] => x[0].type === 'signedBy');
  if (signedBy.length === 0) return;
  let sigs: { name: string; bytes: Buffer }[] = [];
  let lookaside: LookasideConfig | null = null;
  // Where the signatures were looked for: the registry's extension when it announces one
  // (preferred, as containers/image does), else the registries.d lookaside.
  let extension: string | null = null;
  const first = `${applicable.entry}[${signedBy[0][1]}]`;
  try {
    if (client && (await client.supportsSignatures(signal))) {
      extension = client.signaturesUrl(source.repository, manifest.digest);
      sigs = await client.extensionSignatures(source.repository, manifest.digest, signal);
    } else {
      lookaside = await lookasideFor(source);
      if (lookaside) sigs = await fetchSignatures(lookaside.url, source, manifest.digest, signal);
    }
  } catch (err) {
    if (err instanceof ImagePolicyFileError) throw err;
    throw refused(image, applicable, first, `signedBy: the signatures could not be read (${(err as Error).message})`);
  }
  const name = policyName(image);
  for (const [req, i] of signedBy) {
    const where = `${applicable.entry}[${i}]`;
    const keys = describeKeys(req.keys);
    if (extension !== null) {
      if (sigs.length === 0) throw refused(image, applicable, where, `signedBy: no signature was found for ${manifest.digest} at ${extension} (the registry's signature extension, X-Registry-Supports-Signatures: 1)`);
    } else {
      if (!lookaside) throw refused(image, applicable, where, `signedBy: no signature was found: no lookaside is configured for ${formatReference(source)} in ${join(confDir(), 'registries.d')}, and the registry does not announce the signature extension (X-Registry-Supports-Signatures)`);
      if (sigs.length === 0) throw refused(image, applicable, where, `signedBy: no signature was found for ${manifest.digest} at ${signatureUrl(lookaside.url, source, manifest.digest, 1).href} (${lookaside.origin})`);
    }
    let ring: TempKeyring;
    try {
      ring = await TempKeyring.create(req.keys);
    } catch (err) {
      throw refused(image, applicable, where, `signedBy: ${(err as Error).message}`);
    }
    const problems: string[] = [];
    let good = false;
    try {
      for (const s of sigs) {
        const v = await ring.verify(s.bytes, s.name);
        if (typeof v === 'string') {
          problems.push(`${s.name}: ${v}`);
          continue;
        }
        const p = parsePayload(v.payload);
        if (typeof p === 'string') {
          problems.push(`${s.name}: ${p}`);
          continue;
        }
        if (!digestMatches(p.digest, manifest.bytes)) {
          problems.push(`${s.name}: it signs manifest ${p.digest}, not ${manifest.digest}`);
          continue;
        }
        const signed = parseDockerName(p.reference);
        if (!signed) {
          problems.push(`${s.name}: its identity ${JSON.stringify(p.reference)} is not a docker reference`);
          continue;
        }
        const mismatch = identityMismatch(req.signedIdentity, name, signed);
        if (mismatch) {
          problems.push(`${s.name}: ${mismatch}`);
          continue;
        }
        good = true;
        break;
      }
    } finally {
      await ring.dispose();
    }
    if (!good) throw refused(image, applicable, where, `signedBy: no valid signature by keys in ${keys} (${problems.join('; ')})`);
  }
}

