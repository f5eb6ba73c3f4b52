// Room in /boot for a new deployment's kernel and initramfs, checked before anything is
// written. A staged deployment copies them into /boot only at shutdown
// (ostree-finalize-staged), where a full /boot fails silently and the host simply boots
// the old revision; libostree 2022.7 (Debian 12) does not check ahead. So atomhost does,
// and refuses the change with the numbers while the user can still act on them.
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import { AtomhostError } from './errors.js';

/** Loader entries, grub.cfg and the boot counter's env need a little more than the kernel. */
const MARGIN_BYTES = 1024 * 1024;

export class BootSpaceError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown>) {
    super('AH_ERR_NO_SPACE', message, { details });
    this.name = 'BootSpaceError';
  }
}

export interface BootFile {
  path: string;
  size: number;
  /** The OSTree object checksum: equal objects mean ostree reuses what /boot already holds. */
  object: string;
}

/**
 * The kernel, initramfs and device trees ostree copies to /boot for this commit, read from
 * the commit's directories through libostree (no `ostree ls` processes on the upgrade path).
 */
export async function bootFiles(sysroot: Sysroot, commit: string): Promise<BootFile[]> {
  const files = async (dir: string): Promise<BootFile[]> =>
    ((await sysroot.listCommitDir(commit, dir)) ?? []).filter((e) => e.type === 'file').map((e) => ({ path: `${dir}/${e.name}`, size: e.size, object: e.checksum }));
  for (const kver of (await sysroot.listCommitDir(commit, '/usr/lib/modules')) ?? []) {
    if (kver.type !== 'dir') continue;
    const dir = `/usr/lib/modules/${kver.name}`;
    const found = (await files(dir)).filter((f) => /\/(vmlinuz|initramfs\.img)$/.test(f.path));
    if (found.some((f) => f.path.endsWith('/vmlinuz'))) return [...found, ...(await files(`${dir}/dtb`))];
  }
  // Older layouts: /usr/lib/ostree-boot or /boot with vmlinuz-KVER and initramfs-KVER.img.
  for (const dir of ['/usr/lib/ostree-boot', '/boot']) {
    const found = (await files(dir)).filter((f) => /\/(vmlinuz|initramfs)-/.test(f.path));
    if (found.length) return found;
  }
  return [];
}

/**
 * Throws BootSpaceError when /boot cannot take the new commit's boot files. Files whose
 * objects an existing deployment already uses need no room (ostree shares them).
 */
export async function checkBootSpace(sysroot: Sysroot, commit: string, existing: string[]): Promise<void> {
  const wanted = await bootFiles(sysroot, commit);
  if (!wanted.length) return;
  const boot = join(sysroot.path, 'boot');
  const fs = await statfs(boot);
  const free = fs.bavail * fs.bsize;
  const size = (files: BootFile[]) => files.reduce((n, f) => n + f.size, 0);
  // Room for all of them: no need to list what the other deployments share.
  if (free >= size(wanted) + MARGIN_BYTES) return;
  const present = new Set<string>();
  for (const c of new Set(existing)) for (const f of await bootFiles(sysroot, c)) present.add(f.object);
  // Files already there are shared (same objects, same boot checksum): only the loader
  // entries and the menu are new, which the margin covers.
  const need = size(wanted.filter((f) => !present.has(f.object)));
  if (free >= need + MARGIN_BYTES) return;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  throw new BootSpaceError(
    `not enough space in ${boot} for the new ${need ? 'kernel, initramfs and boot entries' : 'boot entries'}: ${mib(need + MARGIN_BYTES)} needed, ${mib(free)} free. ` +
      'Nothing was changed. Free space in /boot (files other tools left there), or remove the rollback deployment with `atomhost cleanup --rollback`, then try again.',
    { boot, neededBytes: need + MARGIN_BYTES, freeBytes: free },
  );
}
