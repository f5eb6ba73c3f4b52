// Who signed a deployed commit, as `atomhost status` shows it (rpm-ostree's GPGSignature
// line). A check runs gpg (≈ 0.1 s), so results are kept per commit and remote in
// ostree/atomhost/signatures.json, keyed also by the times of the repo config, the remote's
// keyring and libostree's system keyring directory: a key or remote added or deleted makes
// the next status check again.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from './atomic-write.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import type { GpgSignature, RemoteInfo } from '../ostree-bridge/types.js';

export interface CommitSigner {
  /** Full fingerprint of the signing key; its last 16 hex digits are the key id. */
  fingerprint: string;
  keyId: string;
  /** "Name <email>" from the remote's keyring, or null when the key is not there. */
  user: string | null;
  valid: boolean;
  /** Why a signature is not good (key missing, expired, revoked, bad); null when valid. */
  problem: string | null;
  signed: string;
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
    fingerprint: s.fingerprint,
    keyId: s.fingerprint.slice(-16),
    user: known ? (s.userEmail ? `${s.userName} <${s.userEmail}>` : s.userName) : null,
    valid: s.valid,
    problem,
    signed: new Date(s.timestamp * 1000).toISOString(),
  };
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
      if (!info || !info.gpgVerify) {
        out.push({ state: 'not-verified', remote: info ? remote : null, signers: [] });
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
      out.push(sig);
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
