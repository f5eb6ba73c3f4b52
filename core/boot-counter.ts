// Boot counting in the boot loader (greenboot-style, on GRUB's environment block): a new
// default gets a number of tries; GRUB counts each boot down in /boot/grub/custom.cfg and,
// when the count runs out before userspace said "healthy", boots the previous entry by
// itself. So a kernel, initramfs or init that never reaches atomhost still falls back.
// The health gate clears the count. Hosts without a grubenv (no GRUB, test sysroots) have
// nothing to count: every function here is then a no-op.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';

export const DEFAULT_BOOT_TRIES = 3;
/** What custom.cfg leaves in boot_counter once it has fallen back to the previous entry. */
export const FELL_BACK = 'fallback';

export function grubenvPath(sysroot: string): string {
  return join(sysroot, 'boot', 'grub', 'grubenv');
}

async function editenv(sysroot: string, args: string[]): Promise<boolean> {
  const env = grubenvPath(sysroot);
  if (!existsSync(env)) return false;
  const r = await run('grub-editenv', [env, ...args]);
  if (r.exitCode !== 0) throw new Error(`grub-editenv ${env} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return true;
}

/** The variables of the GRUB environment block (empty when there is none). */
export async function readBootEnv(sysroot: string): Promise<Record<string, string>> {
  const env = grubenvPath(sysroot);
  if (!existsSync(env)) return {};
  const r = await run('grub-editenv', [env, 'list']);
  if (r.exitCode !== 0) return {};
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Gives the next default `tries` boots to reach the health gate. Called when a new default is written for the next boot. */
export function armBootCounter(sysroot: string, tries = DEFAULT_BOOT_TRIES): Promise<boolean> {
  if (!Number.isInteger(tries) || tries < 1 || tries > 9) throw new RangeError(`boot tries must be 1..9, not ${tries}`);
  return editenv(sysroot, ['set', `boot_counter=${tries}`, 'boot_success=0']);
}

/** The running revision passed its health gate: stop counting. */
export async function clearBootCounter(sysroot: string): Promise<boolean> {
  if (!existsSync(grubenvPath(sysroot))) return false;
  await editenv(sysroot, ['set', 'boot_success=1']);
  return editenv(sysroot, ['unset', 'boot_counter']);
}

/** True when GRUB fell back to the previous entry because the default used up its tries. */
export async function bootLoaderFellBack(sysroot: string): Promise<boolean> {
  return (await readBootEnv(sysroot)).boot_counter === FELL_BACK;
}

/**
 * The GRUB script (custom.cfg, sourced by grub-mkconfig's 41_custom and by the installer's
 * first grub.cfg). Debian's GRUB has no `increment` module, so the count goes down by
 * string comparison; `save_env` rewrites the 1 KiB block in place, which GRUB can do on
 * ext2/3/4 and xfs /boot file systems.
 */
export function bootCounterScript(): string {
  const steps = Array.from({ length: 9 }, (_, i) => 9 - i)
    .map((n) => `  elif [ "\${boot_counter}" = "${n}" ]; then set boot_counter=${n - 1}`)
    .join('\n');
  return `# atomhost boot counting (written by atomhost; see docs/boot-counting.md).
load_env boot_counter boot_success
if [ -n "\${boot_counter}" -a "\${boot_success}" = "0" ]; then
  if [ "\${boot_counter}" = "0" -o "\${boot_counter}" = "${FELL_BACK}" ]; then
    set default=1
    set boot_counter=${FELL_BACK}
${steps.replace(/^ {2}elif/, '  elif')}
  fi
  save_env boot_counter
fi
`;
}
