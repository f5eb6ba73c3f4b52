// ed25519-signed OS commits, checked by atomhost itself: Debian 12's libostree (2022.7) is built
// without sign-ed25519, so it can neither verify nor even load such a remote. The format is
// ostree's sign API: the commit's detached metadata holds `ostree.sign.ed25519`, an array (aay)
// of 64-byte signatures over the commit object's bytes; a public key is the base64 of its 32
// raw bytes; a key file holds one such key per line. A remote asks for it as libostree names it
// in the repo config: sign-verify=ed25519, verification-ed25519-key / verification-ed25519-file.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, SignatureError } from './errors.js';
import { commitObjectBytes, readDetachedSignatures } from '../ostree-bridge/detached-metadata.js';
import type { CommitGate, Sysroot } from '../ostree-bridge/sysroot.js';

export const ED25519_METADATA_KEY = 'ostree.sign.ed25519';
/** DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): the raw 32 bytes follow it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNATURE_BYTES = 64;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export interface Ed25519Key {
  /** The key as configured: base64 of its 32 bytes. */
  base64: string;
  key: KeyObject;
  /** Where it was configured: "inline" or "FILE:LINE". */
  source: string;
}

/** How a remote asks for ed25519 (the options libostree reads); null when it does not. */
export interface Ed25519RemoteConfig {
  inline: string | null;
  file: string | null;
}

/** The short form status shows: the first 16 characters of the base64 key. */
export function ed25519KeyId(base64: string): string {
  return base64.slice(0, 16);
}

/** One base64 public key, strictly: canonical base64 of exactly 32 bytes; null otherwise. */
export function parseEd25519PublicKey(text: string): Ed25519Key | null {
  const s = text.trim();
  if (!BASE64_RE.test(s)) return null;
  const raw = Buffer.from(s, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== s) return null;
  try {
    return { base64: s, key: createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' }), source: 'inline' };
  } catch {
    return null;
  }
}

/** A key file's keys, one per line (blank lines skipped), with the lines that are not keys. */
export async function readEd25519KeyFile(path: string): Promise<{ keys: Ed25519Key[]; bad: number[] }> {
  const text = await readFile(path, 'utf8');
  const keys: Ed25519Key[] = [];
  const bad: number[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    const k = parseEd25519PublicKey(line);
    if (k) keys.push({ ...k, source: `${path}:${i + 1}` });
    else bad.push(i + 1);
  }
  return { keys, bad };
}

/**
 * Checks one `--sign-verify` value before the remote is written: ed25519=inline:KEY with a real
 * key, or ed25519=file:/ABSOLUTE/PATH naming a readable file whose every line is a key.
 * Returns the repo-config option it becomes.
 */
export async function checkSignVerifySpec(spec: string): Promise<[string, string]> {
  const flag = `--sign-verify ${JSON.stringify(spec)}`;
  const m = /^ed25519=(inline|file):(.*)$/s.exec(spec);
  if (!m) throw new InvalidArgumentError(`${flag}: expected ed25519=inline:BASE64KEY or ed25519=file:/ABSOLUTE/PATH`, { field: 'sign-verify' });
  const [, kind, value] = m;
  if (kind === 'inline') {
    if (!parseEd25519PublicKey(value)) throw new InvalidArgumentError(`${flag}: the key is not an ed25519 public key (base64 of 32 bytes); expected ed25519=inline:BASE64KEY`, { field: 'sign-verify' });
    return ['verification-ed25519-key', value];
  }
  if (!value.startsWith('/') || /\s/.test(value)) throw new InvalidArgumentError(`${flag}: expected ed25519=file:/ABSOLUTE/PATH`, { field: 'sign-verify' });
  let read: { keys: Ed25519Key[]; bad: number[] };
  try {
    read = await readEd25519KeyFile(value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(`${flag}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { field: 'sign-verify', file: value });
  }
  if (read.bad.length) throw new InvalidArgumentError(`${flag}: ${value} line ${read.bad[0]} is not an ed25519 public key (base64 of 32 bytes, one per line)`, { field: 'sign-verify', file: value, line: read.bad[0] });
  if (read.keys.length === 0) throw new InvalidArgumentError(`${flag}: ${value} holds no key`, { field: 'sign-verify', file: value });
  return ['verification-ed25519-file', value];
}

/**
 * Whether a remote's options ask for ed25519, as libostree reads them: sign-verify is a list of
 * types (ed25519 among them), or true ("every type that has keys configured").
 */
export function ed25519Config(options: Map<string, string> | null): Ed25519RemoteConfig | null {
  const v = options?.get('sign-verify')?.trim();
  if (!options || !v || v === 'false' || v === '0') return null;
  const inline = options.get('verification-ed25519-key') ?? null;
  const file = options.get('verification-ed25519-file') ?? null;
  if (v === 'true' || v === '1') return inline || file ? { inline, file } : null;
  return v.split(/[;,]/).map((t) => t.trim()).includes('ed25519') ? { inline, file } : null;
}

/** The keys a remote trusts now (its key file is read on every check), and what was wrong. */
export async function remoteEd25519Keys(cfg: Ed25519RemoteConfig): Promise<{ keys: Ed25519Key[]; problems: string[] }> {
  const keys: Ed25519Key[] = [];
  const problems: string[] = [];
  if (cfg.inline !== null) {
    const k = parseEd25519PublicKey(cfg.inline);
    if (k) keys.push(k);
    else problems.push('verification-ed25519-key is not an ed25519 public key');
  }
  if (cfg.file !== null) {
    try {
      const read = await readEd25519KeyFile(cfg.file);
      keys.push(...read.keys);
      // As libostree does, lines that are not keys are skipped; they are reported only when no key is left.
      if (read.keys.length === 0) problems.push(`${cfg.file} holds no ed25519 public key`);
    } catch (err) {
      problems.push(`cannot read ${cfg.file}: ${(err as Error).message}`);
    }
  }
  return { keys, problems };
}

export interface Ed25519Verdict {
  /** valid: a signature by a trusted key; invalid: signed, but by no trusted key (or damaged); unsigned: none. */
  state: 'valid' | 'invalid' | 'unsigned';
  /** The trusted key that made the good signature. */
  key: Ed25519Key | null;
  /** How many ed25519 signatures the commit carries. */
  signatures: number;
  /** Why it is not valid, in words for the user; null when valid. */
  problem: string | null;
}

/** Checks the commit's ed25519 signatures (in the repo at repoPath) against the trusted keys. */
export function verifyEd25519Commit(repoPath: string, checksum: string, keys: Ed25519Key[], keyProblems: string[] = []): Ed25519Verdict {
  const sigs = readDetachedSignatures(repoPath, checksum, ED25519_METADATA_KEY);
  if (sigs.length === 0) return { state: 'unsigned', key: null, signatures: 0, problem: 'the commit is not signed (no ed25519 signature)' };
  const data = commitObjectBytes(repoPath, checksum);
  for (const sig of sigs) {
    if (sig.length !== SIGNATURE_BYTES) continue;
    const key = keys.find((k) => verify(null, data, k.key, sig));
    if (key) return { state: 'valid', key, signatures: sigs.length, problem: null };
  }
  const n = sigs.length === 1 ? 'its ed25519 signature is not' : `none of its ${sigs.length} ed25519 signatures is`;
  const problem = keys.length === 0
    ? `the remote has no usable ed25519 key (${keyProblems.join('; ') || 'none configured'})`
    : `${n} valid for a key the remote trusts (${keys.length} key${keys.length > 1 ? 's' : ''}; signed by another key, or damaged)`;
  return { state: 'invalid', key: null, signatures: sigs.length, problem };
}

/**
 * The pull gate for ed25519 remotes (ostree-bridge's CommitGate): the bridge pulls with
 * libostree's sign-verify off, then calls verify(); on a refusal it puts the remote's refs back.
 * Also used before a deployment, for a commit that is already in the repo.
 */
export class Ed25519Gate implements CommitGate {
  readonly #sysroot: Sysroot;

  constructor(sysroot: Sysroot) {
    this.#sysroot = sysroot;
  }

  async handles(remote: string): Promise<boolean> {
    return ed25519Config(await this.#sysroot.remoteOptions(remote)) !== null;
  }

  /** The verdict for one commit, or null when the remote does not ask for ed25519. */
  async check(remote: string, checksum: string): Promise<Ed25519Verdict | null> {
    const cfg = ed25519Config(await this.#sysroot.remoteOptions(remote));
    if (!cfg) return null;
    const { keys, problems } = await remoteEd25519Keys(cfg);
    return verifyEd25519Commit(this.#sysroot.repoPath, checksum, keys, problems);
  }

  /** Throws SignatureError (naming the remote and the commit) unless every commit is validly signed. */
  async verify(remote: string, checksums: string[]): Promise<void> {
    for (const checksum of checksums) {
      const v = await this.check(remote, checksum);
      if (v && v.state !== 'valid') throw new SignatureError(remote, checksum, v.problem!);
    }
  }
}
