// From the kickstart's partitioning commands (autopart, reqpart, part, volgroup, logvol)
// to a concrete GPT layout for a disk of a given size: pure arithmetic, no devices.
import type { KickstartProblem } from './errors.js';
import type { FsType, Kickstart } from './types.js';

export const GPT_TYPE = {
  biosboot: '21686148-6449-6E6F-744E-656564454649',
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  rootX86_64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
} as const;

/** What lives on a partition or logical volume. */
export interface Volume {
  /** Mount point (absolute), 'swap', or null (biosboot, PV). */
  mount: string | null;
  fstype: FsType;
  label: string | null;
  fsoptions: string | null;
  mkfsoptions: string | null;
}

export interface PartitionPlan extends Volume {
  /** 1-based GPT partition number. */
  number: number;
  name: string;
  typeGuid: string;
  sizeMiB: number;
  /** For lvmpv partitions: the kickstart's pv.NAME. */
  pv: string | null;
}

export interface LvPlan extends Volume {
  vg: string;
  name: string;
  sizeMiB: number;
}

export interface VgPlan {
  name: string;
  /** Partition numbers of its PVs. */
  pvs: number[];
  pesizeKiB: number;
}

export interface Layout {
  diskMiB: number;
  partitions: PartitionPlan[];
  vgs: VgPlan[];
  lvs: LvPlan[];
}

export class LayoutError extends Error {
  constructor(
    message: string,
    readonly at?: KickstartProblem,
  ) {
    super(message);
  }
}

/** Sizes (MiB) atomhost uses where Anaconda picks them itself. */
export const DEFAULTS = { biosboot: 1, efi: 200, boot: 1024, xfsMin: 300, lvmOverhead: 4 } as const;

interface Req {
  base: number;
  grow: boolean;
  max: number | null;
}

/** Shares `free` MiB among growable requests, in proportion to their base sizes, up to their maxima. */
function grow(reqs: Req[], free: number): number[] {
  const sizes = reqs.map((r) => r.base);
  let left = free;
  let active = reqs.map((r, i) => (r.grow && (r.max === null || r.max > r.base) ? i : -1)).filter((i) => i >= 0);
  while (left > 0 && active.length) {
    const weight = active.reduce((a, i) => a + Math.max(reqs[i].base, 1), 0);
    let used = 0;
    const next: number[] = [];
    for (const i of active) {
      let add = Math.floor((left * Math.max(reqs[i].base, 1)) / weight);
      const max = reqs[i].max;
      if (max !== null && sizes[i] + add >= max) add = max - sizes[i];
      else next.push(i);
      sizes[i] += add;
      used += add;
    }
    if (used === 0) {
      // Rounding left a few MiB: give them to the first grower.
      sizes[active[0]] += left;
      break;
    }
    left -= used;
    active = next;
  }
  return sizes;
}

export function planLayout(ks: Kickstart, diskBytes: number, osname: string): Layout {
  const diskMiB = Math.floor(diskBytes / (1024 * 1024));
  // GPT: 1 MiB of alignment before the first partition, the backup table in the last MiB.
  const usable = diskMiB - 2;
  const parts: Omit<PartitionPlan, 'number' | 'sizeMiB'>[] = [];
  const reqs: Req[] = [];
  const lvReqs: { lv: Omit<LvPlan, 'sizeMiB'>; req: Req; percent: number | null }[] = [];
  const vgs: { name: string; pvNames: string[]; pesizeKiB: number }[] = [];

  const fsPart = (mount: string | null, fstype: FsType, extra: Partial<Volume> = {}, pv: string | null = null) => ({
    mount,
    fstype,
    label: extra.label ?? null,
    fsoptions: extra.fsoptions ?? null,
    mkfsoptions: extra.mkfsoptions ?? null,
    name: pv ?? (fstype === 'biosboot' ? 'biosboot' : fstype === 'efi' ? 'EFI System Partition' : mount === '/' ? 'root' : mount === 'swap' ? 'swap' : (mount ?? fstype)),
    typeGuid:
      fstype === 'biosboot' ? GPT_TYPE.biosboot : fstype === 'efi' ? GPT_TYPE.efi : fstype === 'swap' ? GPT_TYPE.swap : fstype === 'lvmpv' ? GPT_TYPE.lvm : mount === '/' ? GPT_TYPE.rootX86_64 : GPT_TYPE.linux,
    pv,
  });
  const requiredParts = (addBoot: boolean, bootFs: FsType) => {
    parts.push(fsPart(null, 'biosboot'));
    reqs.push({ base: DEFAULTS.biosboot, grow: false, max: null });
    parts.push(fsPart('/boot/efi', 'efi'));
    reqs.push({ base: DEFAULTS.efi, grow: false, max: null });
    if (addBoot) {
      parts.push(fsPart('/boot', bootFs));
      reqs.push({ base: DEFAULTS.boot, grow: false, max: null });
    }
  };

  if (ks.autopart) {
    const a = ks.autopart;
    const rootFs: FsType = a.fstype ?? 'xfs';
    requiredParts(!a.noboot, 'ext4');
    const swapMiB = Math.min(2048, Math.max(32, Math.floor(diskMiB / 16)));
    if (a.type === 'plain') {
      if (!a.noswap) {
        parts.push(fsPart('swap', 'swap'));
        reqs.push({ base: swapMiB, grow: false, max: null });
      }
      parts.push(fsPart('/', rootFs));
      reqs.push({ base: rootFs === 'xfs' ? DEFAULTS.xfsMin : 1, grow: true, max: null });
    } else {
      const vg = osname.replace(/[^A-Za-z0-9+_.-]/g, '_');
      parts.push(fsPart(null, 'lvmpv', {}, 'pv.01'));
      reqs.push({ base: 1, grow: true, max: null });
      vgs.push({ name: vg, pvNames: ['pv.01'], pesizeKiB: 4096 });
      if (!a.noswap) lvReqs.push({ lv: { vg, name: 'swap', mount: 'swap', fstype: 'swap', label: null, fsoptions: null, mkfsoptions: null }, req: { base: swapMiB, grow: false, max: null }, percent: null });
      lvReqs.push({ lv: { vg, name: 'root', mount: '/', fstype: rootFs, label: null, fsoptions: null, mkfsoptions: null }, req: { base: rootFs === 'xfs' ? DEFAULTS.xfsMin : 1, grow: true, max: null }, percent: null });
    }
  } else {
    if (ks.reqpart) requiredParts(ks.reqpart.addBoot, 'xfs');
    // Anaconda's order: biosboot and EFI first, then /boot, then the rest as listed.
    const order = (m: string) => (m === 'biosboot' ? 0 : m === '/boot/efi' ? 1 : m === '/boot' ? 2 : 3);
    const listed = [...ks.parts].sort((a, b) => order(a.mntpoint) - order(b.mntpoint));
    for (const p of listed) {
      const pv = p.fstype === 'lvmpv' ? p.mntpoint : null;
      parts.push(fsPart(p.fstype === 'biosboot' || pv ? null : p.mntpoint, p.fstype, p, pv));
      const dflt = p.fstype === 'biosboot' ? DEFAULTS.biosboot : p.fstype === 'efi' ? DEFAULTS.efi : p.mntpoint === 'swap' ? Math.min(2048, Math.max(32, Math.floor(diskMiB / 16))) : 1;
      reqs.push({ base: p.size ?? (p.fstype === 'xfs' ? DEFAULTS.xfsMin : dflt), grow: p.grow || (p.size === null && !p.recommended && !['biosboot', 'efi'].includes(p.fstype) && p.mntpoint !== 'swap'), max: p.maxsize });
    }
    for (const v of ks.volgroups) vgs.push({ name: v.name, pvNames: v.pvs, pesizeKiB: v.pesize });
    for (const l of ks.logvols) {
      lvReqs.push({
        lv: { vg: l.vgname, name: l.name, mount: l.mntpoint === 'swap' ? 'swap' : l.mntpoint, fstype: l.fstype, label: l.label, fsoptions: l.fsoptions, mkfsoptions: l.mkfsoptions },
        req: { base: l.size ?? (l.fstype === 'xfs' ? DEFAULTS.xfsMin : 1), grow: l.grow || (l.size === null && l.percent === null), max: l.maxsize },
        percent: l.percent,
      });
    }
  }

  const fixed = reqs.reduce((a, r) => a + r.base, 0);
  if (fixed > usable) throw new LayoutError(`the partitions need at least ${fixed} MiB but the disk has ${usable} MiB usable (${diskMiB} MiB in all)`);
  const sizes = grow(reqs, usable - fixed);
  const partitions: PartitionPlan[] = parts.map((p, i) => ({ ...p, number: i + 1, sizeMiB: sizes[i] }));

  const vgPlans: VgPlan[] = vgs.map((v) => ({
    name: v.name,
    pvs: v.pvNames.map((n) => partitions.find((p) => p.pv === n)!.number),
    pesizeKiB: v.pesizeKiB,
  }));
  const lvs: LvPlan[] = [];
  for (const vg of vgPlans) {
    const pe = vg.pesizeKiB / 1024;
    // Each PV loses its metadata area (1 MiB) and rounds down to whole extents.
    const total = vg.pvs.reduce((a, n) => a + Math.floor((partitions[n - 1].sizeMiB - 1) / pe) * pe, 0);
    const mine = lvReqs.filter((l) => l.lv.vg === vg.name);
    const reqsVg = mine.map((l) => (l.percent !== null ? { base: Math.floor((total * l.percent) / 100 / pe) * pe, grow: false, max: null } : { ...l.req, base: Math.ceil(l.req.base / pe) * pe }));
    const need = reqsVg.reduce((a, r) => a + r.base, 0);
    if (need > total) throw new LayoutError(`the logical volumes of ${vg.name} need ${need} MiB but it has ${total} MiB`);
    const lvSizes = grow(reqsVg, total - need).map((s) => Math.floor(s / pe) * pe);
    mine.forEach((l, i) => lvs.push({ ...l.lv, sizeMiB: lvSizes[i] }));
  }
  for (const v of [...partitions, ...lvs]) {
    if (v.fstype === 'xfs' && v.sizeMiB < DEFAULTS.xfsMin) throw new LayoutError(`${v.mount ?? v.fstype} would get ${v.sizeMiB} MiB, but XFS needs at least ${DEFAULTS.xfsMin} MiB: give a larger disk or use ext4`);
    if ((v.fstype === 'efi' || v.fstype === 'vfat') && v.sizeMiB < 33) throw new LayoutError(`${v.mount} would get ${v.sizeMiB} MiB; a FAT32 EFI system partition needs at least 33 MiB`);
  }
  return { diskMiB, partitions, vgs: vgPlans, lvs };
}

/** The volume mounted at `mount`, partition or LV. */
export function volumeAt(layout: Layout, mount: string): PartitionPlan | LvPlan | undefined {
  return layout.partitions.find((p) => p.mount === mount) ?? layout.lvs.find((l) => l.mount === mount);
}

/** Size strings as the CLI takes them: 2G, 2GiB, 512M, 1.5T, or bytes. */
export function parseSize(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(s.trim());
  if (!m) return null;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K'];
  const n = Math.floor(Number(m[1]) * mult);
  return n > 0 ? n : null;
}
