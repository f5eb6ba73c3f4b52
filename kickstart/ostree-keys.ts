// The keys that `ostreesetup` without --nogpg verifies the OS with. Anaconda relies on the
// keys libostree trusts on the installing system; atomhost takes them from one documented
// directory on the installing host (a %pre can write them there) and imports them into the
// new remote's own keyring, so the installed host keeps verifying its upgrades. Before a
// disk is touched, the ref's commit is fetched (metadata only) into a scratch repository
// through a remote configured the same way: an unsigned commit, or one signed by another
// key, stops the install there.
import { readdir, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOk } from '../core/exec.js';
import { KickstartApplyError } from './errors.js';
import { addRemoteToRepo } from '../ostree-bridge/sysroot.js';
import type { Kickstart } from './types.js';

/** Where the signing keys go (docs/kickstart.md); ATOMHOST_OSTREE_KEYS_DIR only for tests. */
export const OSTREE_KEYS_DIR = '/etc/atomhost/ostree-keys.d';

export function ostreeKeysDir(): string {
  return process.env.ATOMHOST_OSTREE_KEYS_DIR || OSTREE_KEYS_DIR;
}

/** The key files (*.asc, *.gpg) of the keys directory, sorted; [] when it has none. */
export async function ostreeKeyFiles(): Promise<string[]> {
  const dir = ostreeKeysDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /\.(asc|gpg)$/.test(n)).sort().map((n) => join(dir, n));
}

/** Adds the ostreesetup remote to a repo: with its keys, or gpg-verify=false with --nogpg. */
export async function addSetupRemote(repo: string, setup: NonNullable<Kickstart['ostreesetup']>, keys: string[]): Promise<void> {
  await addRemoteToRepo(repo, setup.remote, setup.url, setup.nogpg ? { gpgVerify: false } : { gpgVerify: true, gpgImport: keys });
}

/**
 * Checks, before any disk is written, that the ref's commit is signed by one of the keys.
 * Returns the key files to import (none with --nogpg).
 */
export async function preflightSignedRef(ks: Kickstart, work: string): Promise<string[]> {
  const setup = ks.ostreesetup!;
  if (setup.nogpg) return [];
  const where = `${setup.at.file}:${setup.at.line}`;
  const keys = await ostreeKeyFiles();
  if (keys.length === 0) {
    throw new KickstartApplyError(
      'ostreesetup',
      `${where}: ostreesetup verifies the OS commit's GPG signature, and there is no key in ${ostreeKeysDir()} (put the signing key there as *.asc or *.gpg, e.g. from %pre; or add --nogpg to install unverified)`,
      { details: { file: setup.at.file, line: setup.at.line } },
    );
  }
  const repo = join(work, 'verify-repo');
  await mkdir(repo);
  await runOk('ostree', ['init', `--repo=${repo}`, '--mode=archive']);
  try {
    await addSetupRemote(repo, setup, keys);
  } catch (err) {
    throw new KickstartApplyError('ostreesetup', `${where}: the keys in ${ostreeKeysDir()} could not be imported (${keys.join(', ')}): ${(err as Error).message}`, { cause: err });
  }
  const r = await run('ostree', ['pull', `--repo=${repo}`, '--commit-metadata-only', setup.remote, setup.ref]);
  if (r.exitCode !== 0) {
    const msg = `${r.stderr}`.trim().replace(/^error: /, '');
    const why = /no signatures found/i.test(msg)
      ? 'the commit is not signed'
      : /public key not found/i.test(msg)
        ? `it is signed by a key that is not in ${ostreeKeysDir()}`
        : 'it could not be fetched';
    throw new KickstartApplyError('ostreesetup', `${where}: refused ${setup.remote}:${setup.ref} from ${setup.url}: ${why} (${msg}); no disk was touched`, {
      details: { file: setup.at.file, line: setup.at.line, remote: setup.remote, ref: setup.ref },
    });
  }
  return keys;
}
