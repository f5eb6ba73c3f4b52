// Room in /boot for a new deployment's kernel and initramfs, checked before anything is
// written. A staged deployment copies them into /boot only at shutdown
// (ostree-finalize-staged), where a full /boot fails silently and the host simply boots
// the old revision; libostree 2022.7 (Debian 12) does not check ahead. So atomhost does,
// and refuses the change with the numbers while the user can still act on them.
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';
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

/** The kernel, initramfs and device trees ostree copies to /boot for this commit. */
export async function bootFiles(repo: string, commit: string): Promise<BootFile[]> {
  const list = async (path: string): Promise<BootFile[]> => {
    const r = await run('ostree', [`--repo=${repo}`, 'ls', '-C', commit, path]);
    if (r.exitCode !== 0) return [];
    // "-00644 0 0 SIZE CHECKSUM PATH": the OS commit being deployed is trusted content;
    // only the size and checksum columns are used.
    return r.stdout.split('\n').flatMap((line) => {
      const m = /^([-d])\S+ \d+ \d+\s+(\d+) ([0-9a-f]{64}) (\S.*)$/.exec(line);
      return m && m[1] === '-' ? [{ size: Number(m[2]), object: m[3], path: m[4] }] : [];
    });
  };
  const modules = await run('ostree', [`--repo=${repo}`, 'ls', commit, '/usr/lib/modules']);
  for (const line of modules.exitCode === 0 ? modules.stdout.split('\n') : []) {
    const m = /^d\S+ \d+ \d+\s+\d+ (\/usr\/lib\/modules\/[^/\s]+)$/.exec(line);
    if (!m) continue;
    const [all, dtb] = await Promise.all([list(m[1]), list(`${m[1]}/dtb`)]);
    const files = all.filter((f) => /\/(vmlinuz|initramfs\.img)$/.test(f.path));
    if (files.some((f) => f.path.endsWith('/vmlinuz'))) return [...files, ...dtb];
  }
  // Older layouts: /usr/lib/ostree-boot or /boot with vmlinuz-KVER and initramfs-KVER.img.
  for (const dir of ['/usr/lib/ostree-boot', '/boot']) {
    const files = (await list(dir)).filter((f) => /\/(vmlinuz|initramfs)-/.test(f.path));
    if (files.length) return files;
  }
  return [];
}

/**
 * Throws BootSpaceError when /boot cannot take the new commit's boot files. Files whose
 * objects an existing deployment already uses need no room (ostree shares them).
 */
export async function checkBootSpace(sysroot: string, repo: string, commit: string, existing: string[]): Promise<void> {
  const wanted = await bootFiles(repo, commit);
  if (!wanted.length) return;
  const boot = join(sysroot, 'boot');
  const fs = await statfs(boot);
  const free = fs.bavail * fs.bsize;
  const size = (files: BootFile[]) => files.reduce((n, f) => n + f.size, 0);
  // Room for all of them: no need to list what the other deployments share (each listing
  // is `ostree ls` processes, most of an upgrade's time when done for every deployment).
  if (free >= size(wanted) + MARGIN_BYTES) return;
  const present = new Set<string>();
  for (const c of new Set(existing)) for (const f of await bootFiles(repo, c)) present.add(f.object);
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
