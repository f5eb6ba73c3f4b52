// atomhost remote add|list|delete: the OSTree remotes the host pulls from, with their
// signature checks (on by default; see docs/security.md).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import type { HostApi } from '../../core/host-api.js';
import type { RemoteAddRequest, RemoteListEntry } from '../../core/remotes.js';
import { action, printJson, type CliContext, type Registrar } from '../context.js';

async function openHost(ctx: CliContext): Promise<HostApi> {
  const { sysroot } = ctx.globals();
  if (sysroot) return (await import('../local-host.js')).openLocalHost(sysroot);
  return (await import('../dbus-backend.js')).connectDaemon();
}

async function withHost<T>(ctx: CliContext, fn: (h: HostApi) => Promise<T>): Promise<T> {
  const h = await openHost(ctx);
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/** A key file's contents as the daemon takes them: armored text as is, binary as base64. */
async function readKey(path: string): Promise<{ source: string; data: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new InvalidArgumentError(`--gpg-import ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { field: 'gpg-import', file: path });
  }
  const text = bytes.toString('utf8');
  return { source: path, data: text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') ? text : bytes.toString('base64') };
}

export function renderRemotes(list: RemoteListEntry[]): string {
  if (list.length === 0) return 'No remotes.';
  return list
    .map((r) => {
      const how = r.verification === 'none' ? 'NO VERIFICATION (unsigned commits accepted)' : `verifies ${r.verification}`;
      const keys = r.gpgKeys.map((k) => `\n    key ${k.fingerprint}${k.uid ? ` ${k.uid}` : ''}`).join('');
      return `${r.name}  ${r.url}  ${how}${keys}`;
    })
    .join('\n');
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export const registerRemote: Registrar = (program: Command, ctx: CliContext) => {
  const remote = program.command('remote').description('the OSTree remotes the host pulls its OS from, and how their commits are verified');
  remote
    .command('add')
    .argument('<name>', 'remote name (used as NAME:REF in refspecs)')
    .argument('<url>', 'repository URL (http, https or file)')
    .option('--gpg-import <keyfile>', 'trust this GPG public key for the remote (repeatable)', collect)
    .option('--sign-verify <spec>', 'verify ed25519 signatures: ed25519=inline:KEY or ed25519=file:PATH (repeatable)', collect)
    .option('--no-verify', 'accept unsigned commits from this remote (must be said explicitly)')
    .description('add a remote; its commits must be signed by a given key unless --no-verify')
    .action(
      action(ctx, async (name: string, url: string, o: { gpgImport?: string[]; signVerify?: string[]; verify: boolean }) => {
        const req: RemoteAddRequest = { name, url, gpgKeys: await Promise.all((o.gpgImport ?? []).map(readKey)), signVerify: o.signVerify ?? [], noVerify: o.verify === false };
        const r = await withHost(ctx, (h) => h.remoteAdd(req));
        if (ctx.globals().json) printJson(r);
        else process.stdout.write(`Added remote ${r.name} (${r.verification === 'none' ? 'no verification' : `verifies ${r.verification}`}${r.gpgKeys.length ? `, ${r.gpgKeys.length} key${r.gpgKeys.length > 1 ? 's' : ''}` : ''})\n`);
      }),
    );
  remote
    .command('list')
    .description('list the remotes with their URL and verification')
    .action(
      action(ctx, async () => {
        const list = await withHost(ctx, (h) => h.remoteList());
        if (ctx.globals().json) printJson(list);
        else process.stdout.write(`${renderRemotes(list)}\n`);
      }),
    );
  remote
    .command('delete')
    .argument('<name>', 'remote name')
    .description('delete a remote and its keyring (deployments that follow it keep booting; they cannot upgrade)')
    .action(
      action(ctx, async (name: string) => {
        await withHost(ctx, (h) => h.remoteDelete(name));
        if (ctx.globals().json) printJson({ deleted: name });
        else process.stdout.write(`Deleted remote ${name}\n`);
      }),
    );
};
