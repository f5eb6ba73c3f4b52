// Disk work for kickstart apply: loop devices, the GPT table, file systems, LVM metadata
// (written for real, never activated: this kernel has no device-mapper), mounts, and a
// teardown stack so that every mount and loop device goes away on success and on failure.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, runOk } from '../core/exec.js';
import { KickstartApplyError } from './errors.js';
import type { Layout, LvPlan, PartitionPlan, Volume } from './layout.js';

/** Undo steps run in reverse order; every step runs even when one fails. */
export class Teardown {
  #steps: { what: string; fn: () => Promise<unknown> }[] = [];

  defer(what: string, fn: () => Promise<unknown>): void {
    this.#steps.push({ what, fn });
  }

  async run(): Promise<string[]> {
    const failures: string[] = [];
    while (this.#steps.length) {
      const s = this.#steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        failures.push(`${s.what}: ${(err as Error).message}`);
      }
    }
    return failures;
  }
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KickstartApplyError) throw err;
    throw new KickstartApplyError(name, (err as Error).message, { cause: err });
  }
}

/** Attaches a loop device (optionally a window of the file) and defers its detach. */
export async function attachLoop(td: Teardown, file: string, opts: { partscan?: boolean; offset?: number; sizelimit?: number } = {}): Promise<string> {
  const args = ['--find', '--show'];
  if (opts.partscan) args.push('--partscan');
  if (opts.offset !== undefined) args.push('--offset', String(opts.offset));
  if (opts.sizelimit !== undefined) args.push('--sizelimit', String(opts.sizelimit));
  const dev = (await step('loop device', () => runOk('losetup', [...args, file]))).trim();
  td.defer(`detach ${dev}`, () => detachLoop(dev));
  return dev;
}

async function detachLoop(dev: string): Promise<void> {
  // A just-unmounted file system can keep the device busy for a moment.
  for (let i = 0; ; i++) {
    const r = await run('losetup', ['--detach', dev]);
    if (r.exitCode === 0 || /No such device/.test(r.stderr)) return;
    if (i >= 20) throw new Error(r.stderr.trim());
    await sleep(100);
  }
}

/** The device node of partition n of a disk (/dev/loop0 → /dev/loop0p1, /dev/sda → /dev/sda1). */
export function partitionNode(disk: string, n: number): string {
  return /\d$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/** Writes the GPT table and waits for the partition nodes (no udev here: partx + devtmpfs). */
export async function writePartitionTable(disk: string, layout: Layout): Promise<string[]> {
  const lines = ['label: gpt', ...layout.partitions.map((p) => `size=${p.sizeMiB}MiB, type=${p.typeGuid}, name="${p.name.replace(/"/g, '')}"`)];
  await step('partitioning', async () => {
    // Old signatures would make blkid and mkfs see ghosts of a previous layout.
    await runOk('wipefs', ['--all', '--quiet', disk]);
    await runOk('sfdisk', ['--quiet', '--wipe', 'always', '--wipe-partitions', 'always', disk], { input: `${lines.join('\n')}\n` });
  });
  await run('partx', ['-u', disk]);
  const nodes = layout.partitions.map((p) => partitionNode(disk, p.number));
  for (let i = 0; !nodes.every((n) => existsSync(n)); i++) {
    if (i === 50) {
      await run('partx', ['-a', disk]);
    }
    if (i > 100) throw new KickstartApplyError('partitioning', `the partition devices ${nodes.filter((n) => !existsSync(n)).join(', ')} did not appear`);
    await sleep(50);
  }
  return nodes;
}

/** Makes the file system a volume asks for; returns its UUID (null for none). */
export async function makeFilesystem(dev: string, v: Volume): Promise<string | null> {
  const label = v.label ? [v.label] : [];
  const extra = v.mkfsoptions ? v.mkfsoptions.split(/\s+/).filter(Boolean) : [];
  const where = `${v.mount ?? v.fstype} (${dev})`;
  await step(`mkfs ${where}`, async () => {
    switch (v.fstype) {
      case 'xfs':
        return runOk('mkfs.xfs', ['-f', '-q', ...(label.length ? ['-L', label[0]] : []), ...extra, dev]);
      case 'ext4':
      case 'ext3':
      case 'ext2':
        return runOk(`mkfs.${v.fstype}`, ['-F', '-q', ...(label.length ? ['-L', label[0]] : []), ...extra, dev]);
      case 'efi':
      case 'vfat':
        return runOk('mkfs.vfat', ['-F', '32', ...(label.length ? ['-n', label[0].toUpperCase()] : []), ...extra, dev]);
      case 'swap':
        return runOk('mkswap', [...(label.length ? ['-L', label[0]] : []), dev]);
      case 'biosboot':
      case 'prepboot':
      case 'lvmpv':
        return '';
      default:
        throw new KickstartApplyError(`mkfs ${where}`, `file system type ${v.fstype} is not supported by apply`);
    }
  });
  if (v.fstype === 'biosboot' || v.fstype === 'prepboot' || v.fstype === 'lvmpv') return null;
  return blkidUuid(dev);
}

export async function blkidUuid(dev: string): Promise<string> {
  return (await runOk('blkid', ['-p', '-s', 'UUID', '-o', 'value', dev])).trim();
}

// ---- LVM ----

/** lvm.conf overrides: see only our devices, no udev, no archives on the provisioning host. */
function lvmConfig(devices: string[]): string {
  const accept = devices.map((d) => `"a|^${d.replace(/[|"]/g, '')}$|"`).join(',');
  return [
    `devices { filter=[${accept},"r|.*|"] global_filter=[${accept},"r|.*|"] use_devicesfile=0 obtain_device_list_from_udev=0 }`,
    'activation { udev_sync=0 udev_rules=0 monitoring=0 }',
    'backup { backup=0 archive=0 }',
  ].join(' ');
}

async function lvm(cmd: string, devices: string[], args: string[]): Promise<string> {
  return runOk(cmd, ['--config', lvmConfig(devices), ...args], { env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1', DM_DISABLE_UDEV: '1' } });
}

export interface LvDevice {
  lv: LvPlan;
  /** A loop device over the LV's data, so its file system can be made and filled. */
  dev: string;
  /** The device the booted host sees (/dev/mapper/VG-LV). */
  mapperPath: string;
}

/** Creates PVs, VGs and LVs as metadata, then a loop device over each LV's extents. */
export async function createLvm(td: Teardown, layout: Layout, partNodes: string[]): Promise<LvDevice[]> {
  const out: LvDevice[] = [];
  for (const vg of layout.vgs) {
    const pvs = vg.pvs.map((n) => partNodes[n - 1]);
    await step(`volgroup ${vg.name}`, async () => {
      for (const pv of pvs) await lvm('pvcreate', pvs, ['--yes', '--force', pv]);
      await lvm('vgcreate', pvs, ['--yes', '--physicalextentsize', `${vg.pesizeKiB}k`, vg.name, ...pvs]);
    });
    const extent = Number((await lvm('vgs', pvs, ['--noheadings', '--nosuffix', '--units', 'b', '-o', 'vg_extent_size', vg.name])).trim());
    const peStart = new Map<string, number>();
    for (const line of (await lvm('pvs', pvs, ['--noheadings', '--nosuffix', '--units', 'b', '-o', 'pv_name,pe_start'])).trim().split('\n')) {
      const [name, start] = line.trim().split(/\s+/);
      peStart.set(name, Number(start));
    }
    for (const lv of layout.lvs.filter((l) => l.vg === vg.name)) {
      const what = `logvol ${lv.mount ?? lv.name} (${vg.name}/${lv.name})`;
      await step(what, () => lvm('lvcreate', pvs, ['--driverloaded', 'n', '--activate', 'n', '--zero', 'n', '--wipesignatures', 'n', '--yes', '-L', `${lv.sizeMiB}m`, '-n', lv.name, vg.name]));
      const ranges = (await lvm('lvs', pvs, ['--noheadings', '-o', 'seg_pe_ranges', `${vg.name}/${lv.name}`])).trim().split(/\s+/).filter(Boolean);
      // Only a linear LV on one PV range maps to one window of a device.
      const m = ranges.length === 1 ? /^(.+):(\d+)-(\d+)$/.exec(ranges[0]) : null;
      if (!m || !peStart.has(m[1])) throw new KickstartApplyError(what, `its extents span ${ranges.join(' ')}; apply can fill only a logical volume that lies in one piece on one physical volume`);
      const first = Number(m[2]);
      const count = Number(m[3]) - first + 1;
      const dev = await attachLoop(td, m[1], { offset: peStart.get(m[1])! + first * extent, sizelimit: count * extent });
      out.push({ lv, dev, mapperPath: `/dev/mapper/${vg.name.replace(/-/g, '--')}-${lv.name.replace(/-/g, '--')}` });
    }
  }
  return out;
}

/** Mounts a device and defers its unmount. */
export async function mount(td: Teardown, dev: string, target: string, fstype: string, options?: string): Promise<void> {
  const type = fstype === 'efi' ? 'vfat' : fstype;
  await step(`mount ${target}`, () => runOk('mount', ['-t', type, ...(options ? ['-o', options] : []), dev, target]));
  td.defer(`unmount ${target}`, () => runOk('umount', [target]));
}

/** Bind-mounts (recursively when asked) and defers the unmount. */
export async function bind(td: Teardown, src: string, target: string, opts: { recursive?: boolean } = {}): Promise<void> {
  await runOk('mount', [opts.recursive ? '--rbind' : '--bind', src, target]);
  if (opts.recursive) await runOk('mount', ['--make-rslave', target]);
  td.defer(`unmount ${target}`, () => runOk('umount', opts.recursive ? ['--recursive', '--lazy', target] : [target]));
}

export type { PartitionPlan };
