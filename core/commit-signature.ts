// Who signed a deployed commit, as `atomhost status` shows it (rpm-ostree's GPGSignature
// line). A check runs gpg (≈ 0.1 s), so results are kept per commit and remote in
// ostree/atomhost/signatures.json, keyed also by the times of the repo config, the remote's
// keyring and libostree's system keyring directory: a key or remote added or deleted makes
// the next status check again. ed25519 signatures (core/ed25519-signature.ts) are checked by
// atomhost in well under a millisecond and not cached: their key file is read on every check.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic-write.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import type { GpgSignature, RemoteInfo } from '../ostree-bridge/types.js';
import { Ed25519Gate, ed25519KeyId, type Ed25519Verdict } from './ed25519-signature.js';

export interface CommitSigner {
  /** gpg, or ed25519 (absent in entries cached before ed25519 existed: gpg). */
  type?: 'gpg' | 'ed25519';
  /**
   * GPG: the full fingerprint of the signing key; its last 16 hex digits are the key id.
   * ed25519: the public key as configured (base64); its first 16 characters are the key id
   * ('' when no trusted key made the signature).
   */
  fingerprint: string;
  keyId: string;
  /** "Name <email>" from the remote's keyring, or null when the key is not there. */
  user: string | null;
  valid: boolean;
  /** Why a signature is not good (key missing, expired, revoked, bad); null when valid. */
  problem: string | null;
  /** When it was signed (ISO 8601); null for ed25519, whose signatures carry no time. */
  signed: string | null;
}

export interface CommitSignature {
  /**
   * valid: a good signature by a trusted key; invalid: signed, but no signature is good;
   * unsigned: the remote checks, the commit has none; not-verified: the remote checks nothing
   * (or the refspec has no remote, or the remote is gone).
   */
  state: 'valid' | 'invalid' | 'unsigned' | 'not-verified';
  remote: string | null;
  signers: CommitSigner[];
}

type Cache = Record<string, CommitSignature>;

/** libostree's built-in keyring directory (DATADIR/ostree/trusted.gpg.d on Debian). */
const SYSTEM_KEYRING_DIR = '/usr/share/ostree/trusted.gpg.d';

function signer(s: GpgSignature): CommitSigner {
  const problem = s.valid
    ? null
    : s.keyMissing
      ? 'key not trusted by the remote'
      : s.keyRevoked
        ? 'key revoked'
        : s.keyExpired
          ? 'key expired'
          : s.sigExpired
            ? 'signature expired'
            : 'bad signature';
  const known = !s.keyMissing && !s.userName.startsWith('[unknown');
  return {
    type: 'gpg',
    fingerprint: s.fingerprint,
    keyId: s.fingerprint.slice(-16),
    user: known ? (s.userEmail ? `${s.userName} <${s.userEmail}>` : s.userName) : null,
    valid: s.valid,
    problem,
    signed: new Date(s.timestamp * 1000).toISOString(),
  };
}

/** An ed25519 verdict as status shows it. */
function ed25519Signature(remote: string, v: Ed25519Verdict): CommitSignature {
  if (v.state === 'unsigned') return { state: 'unsigned', remote, signers: [] };
  const key = v.key?.base64 ?? '';
  return { state: v.state, remote, signers: [{ type: 'ed25519', fingerprint: key, keyId: ed25519KeyId(key), user: null, valid: v.state === 'valid', problem: v.problem, signed: null }] };
}

/** A remote that checks both: valid only when both are; the worse state otherwise. */
function merge(a: CommitSignature, b: CommitSignature): CommitSignature {
  const rank = ['not-verified', 'valid', 'unsigned', 'invalid'] as const;
  return { state: rank[Math.max(rank.indexOf(a.state), rank.indexOf(b.state))], remote: a.remote, signers: [...a.signers, ...b.signers] };
}

export class SignatureChecker {
  readonly #sysroot: Sysroot;
  readonly #file: string;
  #remotes: Promise<RemoteInfo[]> | null = null;

  constructor(sysroot: Sysroot) {
    this.#sysroot = sysroot;
    this.#file = join(sysroot.path, 'ostree', 'atomhost', 'signatures.json');
  }

  /** Signatures of each (checksum, remote) pair, from the cache where it is still current. */
  async check(items: { checksum: string; remote: string | null }[]): Promise<CommitSignature[]> {
    this.#remotes ??= this.#sysroot.remoteInfos({ keys: false }).catch(() => []);
    const remotes = await this.#remotes;
    const cache: Cache = await readFile(this.#file, 'utf8').then((t) => JSON.parse(t) as Cache).catch(() => ({}));
    const stamp = await this.#stamp();
    let dirty = false;
    const out: CommitSignature[] = [];
    for (const { checksum, remote } of items) {
      const info = remote ? remotes.find((r) => r.name === remote) : undefined;
      let ed: CommitSignature | null = null;
      if (info?.signVerify) {
        try {
          const v = await new Ed25519Gate(this.#sysroot).check(remote!, checksum);
          if (v) ed = ed25519Signature(remote!, v);
        } catch {
          out.push({ state: 'not-verified', remote, signers: [] }); // the commit is gone: say nothing
          continue;
        }
      }
      if (!info || !info.gpgVerify) {
        out.push(ed ?? { state: 'not-verified', remote: info ? remote : null, signers: [] });
        continue;
      }
      const key = `${checksum}:${remote}:${stamp(remote!)}`;
      let sig = cache[key];
      if (!sig) {
        let signers: CommitSigner[];
        try {
          signers = this.#sysroot.verifyCommit(checksum, remote!).map(signer);
        } catch {
          out.push({ state: 'not-verified', remote, signers: [] }); // the commit is gone: say nothing, cache nothing
          continue;
        }
        sig = { state: signers.length === 0 ? 'unsigned' : signers.some((s) => s.valid) ? 'valid' : 'invalid', remote, signers };
        cache[key] = sig;
        dirty = true;
      }
      out.push(ed ? merge(sig, ed) : sig);
    }
    if (dirty) {
      // Keep only entries of the current stamps: the file does not grow with every key change.
      const keep = Object.fromEntries(Object.entries(cache).filter(([k]) => k.endsWith(`:${stamp(k.split(':')[1])}`)));
      await atomicWriteFile(this.#file, `${JSON.stringify(keep)}\n`).catch(() => {}); // a read-only sysroot still shows status
    }
    return out;
  }

  /** remote → "config mtime/keyring mtime": any change to the remote's config or keys. */
  async #stamp(): Promise<(remote: string) => string> {
    const repo = this.#sysroot.repoPath;
    const mt = async (p: string) => (await stat(p).catch(() => null))?.mtimeMs ?? 0;
    // libostree also trusts the keys of its system keyring directory, for every remote.
    const config = `${await mt(join(repo, 'config'))}/${await mt(SYSTEM_KEYRING_DIR)}`;
    const rings = new Map<string, number>();
    for (const r of (await this.#remotes) ?? []) rings.set(r.name, await mt(join(repo, `${r.name}.trustedkeys.gpg`)));
    return (remote) => `${config}/${rings.get(remote) ?? 0}`;
  }
}
