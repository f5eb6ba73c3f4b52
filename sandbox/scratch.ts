// Scratch directories on their own tmpfs. libostree freezes (FIFREEZE) the filesystem
// holding a sysroot's /boot on each deployment write; on tmpfs that is a no-op, on the
// machine's root disk it would freeze the whole machine for a moment.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Scratch {
  dir: string;
  dispose(): Promise<void>;
}

export async function makeScratch(prefix = 'atomhost-', sizeMiB = 2048): Promise<Scratch> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'atomhost-scratch', dir]);
  return {
    dir,
    dispose: async () => {
      await unimmutable(dir);
      await execa('umount', ['-R', dir]).catch(() => execa('umount', ['-l', dir]).catch(() => {}));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Deployment roots are chattr +i; lift that before removing a sysroot. */
export async function unimmutable(sysrootParent: string): Promise<void> {
  const { stdout } = await execa('find', [sysrootParent, '-maxdepth', '6', '-path', '*/ostree/deploy/*/deploy/*', '-prune', '-type', 'd'], { reject: false });
  for (const d of stdout.split('\n').filter(Boolean)) await execa('chattr', ['-i', d], { reject: false });
}
