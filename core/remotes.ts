// OSTree remotes that atomhost creates: verification is on unless refused out loud. A GPG
// remote carries its own keyring (imported from the key files given), checked by libostree;
// an ed25519 remote gets libostree's own options (sign-verify, verification-ed25519-key/-file),
// checked by atomhost (core/ed25519-signature.ts), as Debian 12's libostree cannot.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomhostError, InvalidArgumentError } from './errors.js';
import { checkSignVerifySpec } from './ed25519-signature.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import type { RemoteInfo } from '../ostree-bridge/types.js';

export interface RemoteAddRequest {
  name: string;
  url: string;
  /** GPG public keys, as the key files' contents (armored or binary, base64 for binary). */
  gpgKeys?: { source: string; data: string }[];
  /** ostree's `--sign-verify` values: ed25519=inline:KEY or ed25519=file:PATH. */
  signVerify?: string[];
  /** Explicitly no signature checks. */
  noVerify?: boolean;
}

export interface RemoteListEntry extends RemoteInfo {
  /** One word for humans and scripts: gpg, ed25519, gpg+ed25519, or none. */
  verification: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SIGN_VERIFY_RE = /^ed25519=(inline:[A-Za-z0-9+/=]+|file:\/\S+)$/;

/** Checks a request before anything is written; every refusal names the field. */
export function checkRemoteAdd(req: RemoteAddRequest): void {
  if (!NAME_RE.test(req.name)) throw new InvalidArgumentError(`remote name ${JSON.stringify(req.name)} must be letters, digits, '.', '_' or '-' (at most 64)`, { field: 'name' });
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new InvalidArgumentError(`remote URL ${JSON.stringify(req.url)} is not a URL`, { field: 'url' });
  }
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) throw new InvalidArgumentError(`remote URL ${req.url}: only http, https and file URLs are supported`, { field: 'url' });
  for (const s of req.signVerify ?? []) {
    if (!SIGN_VERIFY_RE.test(s)) throw new InvalidArgumentError(`--sign-verify ${JSON.stringify(s)}: expected ed25519=inline:BASE64KEY or ed25519=file:/ABSOLUTE/PATH`, { field: 'sign-verify' });
  }
  const hasKey = (req.gpgKeys?.length ?? 0) > 0 || (req.signVerify?.length ?? 0) > 0;
  if (req.noVerify && hasKey) throw new InvalidArgumentError('--no-verify and a key (--gpg-import/--sign-verify) contradict each other', { field: 'no-verify' });
  if (!req.noVerify && !hasKey) {
    throw new InvalidArgumentError(
      `remote ${req.name}: no key to verify its commits with; give --gpg-import KEYFILE or --sign-verify=ed25519=inline:KEY (or say --no-verify to accept unsigned commits)`,
      { field: 'gpg-import' },
    );
  }
}

/** Adds the remote; on any failure the repo is left without it. */
export async function addRemote(sysroot: Sysroot, req: RemoteAddRequest): Promise<RemoteListEntry> {
  checkRemoteAdd(req);
  // The options libostree itself would write for --sign-verify (which its CLI refuses when built
  // without sign-ed25519): one inline key and/or one key file.
  const signOptions: [string, string][] = [];
  for (const spec of req.signVerify ?? []) {
    const [key, value] = await checkSignVerifySpec(spec);
    if (signOptions.some(([k]) => k === key)) {
      throw new InvalidArgumentError(`--sign-verify ${JSON.stringify(spec)}: a remote takes one ${key === 'verification-ed25519-key' ? 'inline key' : 'key file'}; put several keys in one file (ed25519=file:PATH, one key per line)`, { field: 'sign-verify' });
    }
    signOptions.push([key, value]);
  }
  if (signOptions.length) signOptions.unshift(['sign-verify', 'ed25519']);
  if ((await sysroot.remotes()).includes(req.name)) throw new InvalidArgumentError(`remote ${req.name} already exists (delete it first: atomhost remote delete ${req.name})`, { field: 'name' });
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-keys-'));
  try {
    const files: string[] = [];
    for (const [i, k] of (req.gpgKeys ?? []).entries()) {
      const armored = k.data.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----');
      const bytes = armored ? Buffer.from(k.data) : Buffer.from(k.data, 'base64');
      if (!armored && bytes.length === 0) throw new InvalidArgumentError(`key file ${k.source} is empty or not an OpenPGP public key`, { field: 'gpg-import', file: k.source });
      const f = join(dir, `key${i}.gpg`);
      await writeFile(f, bytes, { mode: 0o600 });
      files.push(f);
    }
    try {
      await sysroot.addRemote(req.name, req.url, { gpgVerify: files.length > 0, gpgImport: files, set: signOptions });
    } catch (err) {
      // ostree writes the config before importing keys: take a half-made remote away again.
      if ((await sysroot.remotes()).includes(req.name)) await sysroot.deleteRemote(req.name).catch(() => {});
      const msg = (err as Error).message;
      if (/gpg|key/i.test(msg) && files.length) {
        throw new InvalidArgumentError(`remote ${req.name}: a key file is not an OpenPGP public key (${(req.gpgKeys ?? []).map((k) => k.source).join(', ')}): ${msg}`, { field: 'gpg-import' });
      }
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const added = (await listRemotes(sysroot)).find((r) => r.name === req.name);
  if (!added) throw new AtomhostError('AH_ERR_FAILED', `remote ${req.name} was not found after adding it`);
  if (added.gpgVerify && added.gpgKeys.length === 0) {
    await sysroot.deleteRemote(req.name).catch(() => {});
    throw new InvalidArgumentError(`remote ${req.name}: no public key was found in ${(req.gpgKeys ?? []).map((k) => k.source).join(', ')}; the remote was not added`, { field: 'gpg-import' });
  }
  return added;
}

export async function listRemotes(sysroot: Sysroot): Promise<RemoteListEntry[]> {
  return (await sysroot.remoteInfos()).map((r) => ({ ...r, verification: [r.gpgVerify ? 'gpg' : '', r.signVerify ? 'ed25519' : ''].filter(Boolean).join('+') || 'none' }));
}
