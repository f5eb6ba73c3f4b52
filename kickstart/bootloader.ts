// The boot loader of a provisioned disk: GRUB for BIOS, with its menu generated from
// OSTree's deployments the way Debian's ostree integration does it (15_ostree and
// `ostree admin instutil grub2-generate`), and boot counting in custom.cfg. After this
// first menu, the sysroot is switched to `sysroot.bootloader=grub2`, so every later
// deployment on the booted host regenerates the menu with grub-mkconfig.
import { mkdir, readFile, symlink, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bootCounterScript } from '../core/boot-counter.js';
import { atomicWriteFile } from '../core/atomic-write.js';
import { runOk } from '../core/exec.js';
import type { Kickstart } from './types.js';

export interface BootloaderTarget {
  /** The whole disk (a loop device for an image): GRUB's core goes to its BIOS boot partition. */
  disk: string;
  /** The mounted sysroot; its /boot is the boot file system. */
  sysroot: string;
  /** The file system that holds the kernels GRUB reads (the /boot partition, or /). */
  boot: { uuid: string; fstype: string; separate: boolean };
  /** The deployment's root, for its /etc/default/grub. */
  deploymentEtc: string;
}

export interface BootloaderResult {
  installed: boolean;
  timeout: number;
  note: string;
}

const GRUB_FS_MODULE: Record<string, string> = { ext4: 'ext2', ext3: 'ext2', ext2: 'ext2', xfs: 'xfs', vfat: 'fat' };

/** Installs GRUB (i386-pc) and writes the first menu, the boot-counting script and an empty environment block. */
export async function installBootloader(ks: Kickstart, t: BootloaderTarget): Promise<BootloaderResult> {
  const bl = ks.bootloader;
  const timeout = bl?.timeout ?? 5;
  if (bl?.disabled || bl?.location === 'none') return { installed: false, timeout, note: 'bootloader --location=none: BLS entries only, no boot loader installed' };
  const mod = GRUB_FS_MODULE[t.boot.fstype];
  if (!mod) throw new Error(`GRUB cannot read a ${t.boot.fstype} /boot here (ext4, xfs or vfat)`);
  const bootDir = join(t.sysroot, 'boot');
  // --location=partition: GRUB goes to the /boot partition's boot record instead of the MBR.
  // Without udev, grub-probe cannot tell which disk a loop partition belongs to: name it.
  await mkdir(join(bootDir, 'grub'), { recursive: true });
  await writeFile(join(bootDir, 'grub', 'device.map'), `(hd0) ${t.disk}\n`);
  await runOk('grub-install', ['--target=i386-pc', `--boot-directory=${bootDir}`, '--no-floppy', ...(bl?.location === 'partition' ? ['--force'] : []), t.disk]);
  await rm(join(bootDir, 'grub', 'device.map'));
  await runOk('grub-editenv', [join(bootDir, 'grub', 'grubenv'), 'create']);
  await writeFile(join(bootDir, 'grub', 'custom.cfg'), bootCounterScript());

  // How GRUB finds the kernels: the same lines 15_ostree caches as GRUB2_PREPARE_ROOT_CACHE.
  const prepare = `insmod part_gpt\ninsmod ${mod}\nsearch --no-floppy --fs-uuid --set=root ${t.boot.uuid}`;
  const entries = await runOk('ostree', ['admin', 'instutil', 'grub2-generate', `--sysroot=${t.sysroot}`], {
    env: { ...process.env, GRUB2_BOOT_DEVICE_ID: t.boot.uuid, GRUB2_PREPARE_ROOT_CACHE: prepare },
  });
  const serial = /console=ttyS(\d)/.exec(ks.bootloader?.append.join(' ') ?? '');
  const header = [
    '# First menu, written by atomhost kickstart; grub-mkconfig replaces it at the next deployment.',
    ...(serial ? [`serial --unit=${serial[1]} --speed=115200`, 'terminal_input serial console', 'terminal_output serial console'] : []),
    `set timeout=${timeout}`,
    'set default=0',
    'if [ -s $prefix/grubenv ]; then load_env; fi',
    'if [ -n "${next_entry}" ]; then set default="${next_entry}"; set next_entry=; save_env next_entry; fi',
    '',
  ].join('\n');
  const footer = '\nif [ -f ${config_directory}/custom.cfg ]; then source ${config_directory}/custom.cfg; elif [ -f $prefix/custom.cfg ]; then source $prefix/custom.cfg; fi\n';
  // /boot/grub/grub.cfg → ../loader/grub.cfg: the menu follows ostree's atomic loader swap.
  await atomicWriteFile(join(bootDir, 'loader', 'grub.cfg'), header + entries + footer);
  await rm(join(bootDir, 'grub', 'grub.cfg'), { force: true });
  await symlink('../loader/grub.cfg', join(bootDir, 'grub', 'grub.cfg'));
  await runOk('ostree', ['config', `--repo=${join(t.sysroot, 'ostree', 'repo')}`, 'set', 'sysroot.bootloader', 'grub2']);
  await writeDefaultGrub(t.deploymentEtc, timeout, serial?.[1] ?? null);
  return { installed: true, timeout, note: `GRUB (i386-pc) on ${t.disk}, boot counting in /boot/grub/custom.cfg` };
}

/** /etc/default/grub as grub-mkconfig on the booted host reads it (timeout, serial console). */
async function writeDefaultGrub(etc: string, timeout: number, serialUnit: string | null): Promise<void> {
  const path = join(etc, 'default', 'grub');
  const old = await readFile(path, 'utf8').catch(() => '');
  const keep = old.split('\n').filter((l) => l && !/^(GRUB_TIMEOUT|GRUB_TERMINAL|GRUB_SERIAL_COMMAND|GRUB_DEFAULT|GRUB_DISABLE_OS_PROBER)=/.test(l));
  const lines = [
    ...keep,
    'GRUB_DEFAULT=0',
    `GRUB_TIMEOUT=${timeout}`,
    'GRUB_DISABLE_OS_PROBER=true',
    ...(serialUnit !== null ? ['GRUB_TERMINAL="serial console"', `GRUB_SERIAL_COMMAND="serial --unit=${serialUnit} --speed=115200"`] : []),
  ];
  await mkdir(join(etc, 'default'), { recursive: true });
  await atomicWriteFile(path, `${lines.join('\n')}\n`);
}
