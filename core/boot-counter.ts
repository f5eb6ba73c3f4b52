// Boot counting in the boot loader (greenboot-style, on GRUB's environment block): a new
// default gets a number of tries; GRUB counts each boot down in /boot/grub/custom.cfg and,
// when the count runs out before userspace said "healthy", boots the previous entry by
// itself. So a kernel, initramfs or init that never reaches atomhost still falls back.
// The health gate clears the count. Hosts without a grubenv (no GRUB, test sysroots) have
// nothing to count: every function here is then a no-op.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { open, readFile } from 'node:fs/promises';
import { AtomhostError } from './errors.js';

export const DEFAULT_BOOT_TRIES = 3;
/** What custom.cfg leaves in boot_counter once it has fallen back to the previous entry. */
export const FELL_BACK = 'fallback';

export function grubenvPath(sysroot: string): string {
  return join(sysroot, 'boot', 'grub', 'grubenv');
}

/** GRUB's environment block: a header line, `name=value` lines, padded with '#' to 1 KiB. */
const HEADER = '# GRUB Environment Block\n';
const BLOCK_BYTES = 1024;

export class GrubEnvError extends AtomhostError {
  constructor(file: string, why: string) {
    super('AH_ERR_CORRUPT', `${file}: ${why}`, { details: { file } });
    this.name = 'GrubEnvError';
  }
}

function parseEnv(file: string, block: Buffer): Map<string, string> {
  const text = block.toString('latin1');
  if (block.length !== BLOCK_BYTES || !text.startsWith(HEADER)) throw new GrubEnvError(file, `not a GRUB environment block (${block.length} bytes; expected ${BLOCK_BYTES} starting with "${HEADER.trim()}")`);
  const vars = new Map<string, string>();
  for (const line of text.slice(HEADER.length).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !line.startsWith('#')) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return vars;
}

/**
 * Sets and unsets variables by rewriting the block in place, as GRUB's own save_env does:
 * the file keeps its size and its blocks, so it is never empty (grub-editenv truncates and
 * writes again: a power cut in between leaves GRUB no counter) and it needs no free space
 * on /boot. The 1 KiB write sits in one file system block.
 */
async function editenv(sysroot: string, set: Record<string, string>, unset: string[] = []): Promise<boolean> {
  const env = grubenvPath(sysroot);
  if (!existsSync(env)) return false;
  const fh = await open(env, 'r+');
  try {
    const vars = parseEnv(env, await fh.readFile());
    for (const k of unset) vars.delete(k);
    for (const [k, v] of Object.entries(set)) vars.set(k, v);
    const body = HEADER + [...vars].map(([k, v]) => `${k}=${v}\n`).join('');
    if (Buffer.byteLength(body, 'latin1') > BLOCK_BYTES) throw new GrubEnvError(env, `the variables do not fit in ${BLOCK_BYTES} bytes`);
    await fh.write(Buffer.from(body.padEnd(BLOCK_BYTES, '#'), 'latin1'), 0, BLOCK_BYTES, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

/** The variables of the GRUB environment block (empty when there is none or it is unreadable). */
export async function readBootEnv(sysroot: string): Promise<Record<string, string>> {
  const env = grubenvPath(sysroot);
  try {
    return Object.fromEntries(parseEnv(env, await readFile(env)));
  } catch {
    return {};
  }
}

/** Gives the next default `tries` boots to reach the health gate. Called when a new default is written for the next boot. */
export function armBootCounter(sysroot: string, tries = DEFAULT_BOOT_TRIES): Promise<boolean> {
  if (!Number.isInteger(tries) || tries < 1 || tries > 9) throw new RangeError(`boot tries must be 1..9, not ${tries}`);
  return editenv(sysroot, { boot_counter: String(tries), boot_success: '0' });
}

/** The running revision passed its health gate: stop counting. */
export async function clearBootCounter(sysroot: string): Promise<boolean> {
  return editenv(sysroot, { boot_success: '1' }, ['boot_counter']);
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
