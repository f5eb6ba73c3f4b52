// Builds small but real OS trees (busybox-static userland, a kernel and initramfs under
// /usr/lib/modules/KVER, /usr/etc, os-release) and commits them with the real ostree.
// Used by the demo's sandbox host, the tests and the benchmarks.
import { mkdir, writeFile, symlink, copyFile, chmod, rm } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';

export const KERNEL_VERSION = '6.1.0-atomhost';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'echo', 'mount', 'sleep', 'true', 'false', 'httpd', 'wget', 'ps', 'grep', 'env', 'id'];

export interface OsTreeSpec {
  osname: string;
  version: string;
  /** Extra files: path (relative to the tree root) → content. */
  files?: Record<string, string | Buffer>;
  /** Kernel image content; changing it makes a new boot checksum. */
  kernel?: string | Buffer;
  /** Size in bytes of a filler file under /usr/share (for benchmarks). */
  fillerBytes?: number;
}

export async function buildOsTree(dir: string, spec: OsTreeSpec): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/etc', 'usr/share', `usr/lib/modules/${KERNEL_VERSION}`, 'var', 'tmp', 'proc', 'sys', 'dev', 'run', 'boot', 'sysroot']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  // As on OSTree systems, the homes live in /var (the deployment's own tree is read-only).
  for (const [link, target] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib'], ['ostree', 'sysroot/ostree'], ['home', 'var/home'], ['root', 'var/roothome']]) {
    await symlink(target, join(dir, link));
  }
  await copyFile(BUSYBOX, join(dir, 'usr/bin/busybox'));
  await chmod(join(dir, 'usr/bin/busybox'), 0o755);
  for (const a of APPLETS) await symlink('busybox', join(dir, 'usr/bin', a));
  const kernel = spec.kernel ?? `atomhost sandbox kernel ${KERNEL_VERSION}\n`;
  await writeFile(join(dir, `usr/lib/modules/${KERNEL_VERSION}/vmlinuz`), kernel);
  await writeFile(join(dir, `usr/lib/modules/${KERNEL_VERSION}/initramfs.img`), `initramfs for ${KERNEL_VERSION}\n`);
  const osRelease = `NAME="${spec.osname}"\nID=${spec.osname}\nVERSION="${spec.version}"\nVERSION_ID=${spec.version}\nPRETTY_NAME="${spec.osname} ${spec.version}"\n`;
  await writeFile(join(dir, 'usr/lib/os-release'), osRelease);
  await symlink('../usr/lib/os-release', join(dir, 'usr/etc/os-release'));
  await writeFile(join(dir, 'usr/etc/hostname'), `${spec.osname}\n`);
  await writeFile(join(dir, 'usr/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'usr/etc/group'), 'root:x:0:\n');
  await writeFile(join(dir, 'usr/etc/motd'), `Welcome to ${spec.osname} ${spec.version}\n`);
  if (spec.fillerBytes) {
    // Deterministic content so that two versions share it (and dedup) byte for byte.
    const chunk = createHash('sha512');
    const buf = Buffer.alloc(spec.fillerBytes);
    let seed = Buffer.from('atomhost');
    for (let off = 0; off < buf.length; off += 64) {
      seed = chunk.copy().update(seed).digest();
      seed.copy(buf, off);
    }
    await writeFile(join(dir, 'usr/share/filler.bin'), buf);
  }
  for (const [path, content] of Object.entries(spec.files ?? {})) {
    const full = join(dir, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
  }
}

export async function initArchiveRepo(repo: string): Promise<void> {
  await mkdir(repo, { recursive: true });
  await execa('ostree', ['init', `--repo=${repo}`, '--mode=archive']);
}

/** Commits `treeDir` to `ref`; returns the commit checksum. */
export async function commitTree(repo: string, ref: string, treeDir: string, version: string, metadata: Record<string, string> = {}): Promise<string> {
  const args = ['commit', `--repo=${repo}`, `--branch=${ref}`, `--tree=dir=${treeDir}`, `--subject=${ref} ${version}`, `--add-metadata-string=version=${version}`, '--owner-uid=0', '--owner-gid=0'];
  for (const [k, v] of Object.entries(metadata)) args.push(`--add-metadata-string=${k}=${v}`);
  const { stdout } = await execa('ostree', args);
  await execa('ostree', ['summary', '-u', `--repo=${repo}`]);
  return stdout.trim();
}
