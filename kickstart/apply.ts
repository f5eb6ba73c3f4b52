// kickstart apply: from a kickstart to a provisioned disk (an image file or a block device):
// %pre, GPT partitions, file systems and LVM, the OSTree sysroot with the ostreesetup ref
// pulled and deployed (through the ostree bridge, so the host's first revision is written),
// BLS entries with the bootloader's kernel arguments, /etc, %post in the new root.
// An image is built as IMAGE.partial and renamed only when everything succeeded; a disk that
// fails half-way gets its partition table wiped, so nothing half-written looks bootable.
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { run, runOk } from '../core/exec.js';
import { InvalidArgumentError } from '../core/errors.js';
import { fsyncDir } from '../core/atomic-write.js';
import { noProgress, task, type ProgressSink } from '../core/progress.js';
import { LocalHost } from '../core/local-host.js';
import { KickstartApplyError, KickstartError, KickstartScriptError, KickstartUnsupportedError, formatProblem } from './errors.js';
import { parseKickstart } from './parser.js';
import { planLayout, LayoutError, type Layout } from './layout.js';
import { Teardown, attachLoop, bind, createLvm, makeFilesystem, mount, writePartitionTable } from './disk.js';
import { Target } from './target.js';
import { installBootloader } from './bootloader.js';
import { configureEtc, type Mounted } from './configure.js';
import { applyAccounts } from './accounts.js';
import { substituteBasearch } from './basearch.js';
import type { KsVersion } from './versions.js';
import { runScript, type ScriptRun } from './scripts.js';
import { addSetupRemote, preflightSignedRef } from './ostree-keys.js';
import type { Kickstart } from './types.js';

export interface ApplyOptions {
  /** Write an image file of `sizeBytes` at this path. */
  image?: string;
  /** Or provision this block device. */
  disk?: string;
  sizeBytes?: number;
  /** Replace an existing image file. */
  force?: boolean;
  progress?: ProgressSink;
  /** The kickstart version to judge the file by (default the newest). */
  version?: KsVersion;
}

export interface ProvisionedVolume {
  mount: string | null;
  fstype: string;
  sizeMiB: number;
  uuid: string | null;
  /** Partition number, or VG/LV. */
  where: string;
}

export interface ApplyResult {
  target: string;
  sizeBytes: number;
  volumes: ProvisionedVolume[];
  deployment: { osname: string; refspec: string; checksum: string; version: string | null; revision: string | null };
  kargs: string[];
  configured: string[];
  scripts: ScriptRun[];
  warnings: string[];
  /** What the kickstart asks at the end (reboot, poweroff); apply itself never powers anything off. */
  finish: string | null;
}

/** Parses strictly; problems that only apply can reveal come later. */
function load(path: string, lenient: boolean, version?: KsVersion): Kickstart {
  const { ks, errors } = parseKickstart(path, undefined, { lenientIncludes: lenient, version });
  if (errors.length) throw new KickstartError(errors);
  if (ks.unsupported.length) throw new KickstartUnsupportedError(ks.unsupported);
  if (ks.ostreesetup) ks.ostreesetup.ref = substituteBasearch(ks.ostreesetup.ref);
  return ks;
}

export async function applyKickstart(path: string, opts: ApplyOptions): Promise<ApplyResult> {
  const progress = opts.progress ?? noProgress;
  if (!!opts.image === !!opts.disk) throw new InvalidArgumentError('give --image PATH --size SIZE or --disk DEVICE', { field: 'image' });
  let ks = load(path, true, opts.version);
  const osname = ks.ostreesetup!.osname;

  let size: number;
  if (opts.image) {
    if (!opts.sizeBytes) throw new InvalidArgumentError('--image needs --size (e.g. --size 4G)', { field: 'size' });
    if (existsSync(opts.image) && !opts.force) throw new InvalidArgumentError(`${opts.image} exists; remove it or give --force to replace it`, { field: 'image' });
    size = opts.sizeBytes;
  } else {
    const st = statSync(opts.disk!, { throwIfNoEntry: false });
    if (!st?.isBlockDevice()) throw new InvalidArgumentError(`${opts.disk} is not a block device`, { field: 'disk' });
    size = Number((await runOk('blockdev', ['--getsize64', opts.disk!])).trim());
    const signatures = (await runOk('wipefs', ['--noheadings', opts.disk!])).trim();
    if (signatures && !ks.zerombr && ks.clearpart?.which !== 'all') {
      throw new InvalidArgumentError(`${opts.disk} holds data (${signatures.split('\n')[0].trim()}); the kickstart must say clearpart --all (or zerombr) to erase it`, { field: 'disk' });
    }
  }

  const work = await mkdtemp(join(tmpdir(), 'atomhost-ks-'));
  const warnings = ks.warnings.map(formatProblem);
  const scripts: ScriptRun[] = [];
  const preLogs = join(work, 'logs');
  await mkdir(preLogs);

  // %pre may write the files %include reads: run it, then read the kickstart again strictly.
  for (const [i, s] of ks.pre.entries()) {
    const r = await task(progress, `Running %pre (${s.at.file}:${s.at.line})`, () => runScript(s, i, { chroot: null, workdir: work, logPath: join(preLogs, `ks-script-pre-${i}.log`), logInTarget: null, env: process.env }));
    scripts.push(r);
    if (r.exitCode !== 0 && s.erroronfail) {
      await rm(work, { recursive: true, force: true });
      throw new KickstartScriptError('%pre', s.at, r.exitCode, r.tail);
    }
    if (r.exitCode !== 0) warnings.push(`%pre at ${s.at.file}:${s.at.line} exited with ${r.exitCode} (log ${r.log})`);
  }
  if (ks.pre.length) ks = load(path, false, opts.version);

  let layout: Layout;
  let keys: string[];
  try {
    layout = planLayout(ks, size, osname);
    // The OS commit's signature is checked before the disk is touched.
    keys = await task(progress, `Verifying the signature of ${ks.ostreesetup!.remote}:${ks.ostreesetup!.ref}`, () => preflightSignedRef(ks, work));
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    if (err instanceof LayoutError) throw new KickstartApplyError('layout', err.message);
    throw err;
  }

  const partial = opts.image ? join(dirname(opts.image), `.${basename(opts.image)}.partial`) : null;
  const td = new Teardown();
  let ok = false;
  try {
    let disk: string;
    if (partial) {
      await rm(partial, { force: true });
      const fh = await open(partial, 'wx', 0o600);
      await fh.truncate(size);
      await fh.close();
      disk = await attachLoop(td, partial, { partscan: true });
    } else disk = opts.disk!;

    const result = await provision(ks, disk, layout, td, work, progress, warnings, scripts, keys);
    await task(progress, 'Unmounting', async () => {
      const failures = await td.run();
      if (failures.length) throw new KickstartApplyError('unmount', failures.join('; '));
    });
    if (partial) {
      const fh = await open(partial, 'r+');
      await fh.sync();
      await fh.close();
      await rename(partial, opts.image!);
      await fsyncDir(dirname(opts.image!));
    }
    ok = true;
    return { ...result, target: opts.image ?? opts.disk!, sizeBytes: size };
  } finally {
    if (!ok) {
      for (const f of await td.run()) process.stderr.write(`warning: clean-up: ${f}\n`);
      if (partial) await unlink(partial).catch(() => {});
      else await run('wipefs', ['--all', '--quiet', opts.disk!]);
    }
    // Never let the clean-up hide the error that matters: a leftover is reported, not thrown.
    await rm(work, { recursive: true, force: true }).catch((err) => process.stderr.write(`warning: could not remove ${work}: ${(err as Error).message}\n`));
  }
}

async function provision(
  ks: Kickstart,
  disk: string,
  layout: Layout,
  td: Teardown,
  work: string,
  progress: ProgressSink,
  warnings: string[],
  scripts: ScriptRun[],
  keys: string[],
): Promise<Omit<ApplyResult, 'target' | 'sizeBytes'>> {
  const setup = ks.ostreesetup!;
  const nodes = await task(progress, `Partitioning ${disk} (GPT, ${layout.partitions.length} partitions)`, () => writePartitionTable(disk, layout));

  const volumes: ProvisionedVolume[] = [];
  const mounts: (Mounted & { dev: string })[] = [];
  await task(progress, 'Making file systems', async () => {
    for (const p of layout.partitions) {
      const uuid = await makeFilesystem(nodes[p.number - 1], p);
      volumes.push({ mount: p.mount, fstype: p.fstype, sizeMiB: p.sizeMiB, uuid, where: `partition ${p.number}` });
      if (p.mount && uuid) mounts.push({ mount: p.mount, fstype: p.fstype, spec: `UUID=${uuid}`, fsoptions: p.fsoptions, dev: nodes[p.number - 1] });
    }
  });
  if (layout.vgs.length) {
    await task(progress, `Writing LVM metadata (${layout.vgs.map((v) => v.name).join(', ')})`, async () => {
      for (const l of await createLvm(td, layout, nodes)) {
        const uuid = await makeFilesystem(l.dev, l.lv);
        volumes.push({ mount: l.lv.mount, fstype: l.lv.fstype, sizeMiB: l.lv.sizeMiB, uuid, where: `${l.lv.vg}/${l.lv.name}` });
        if (l.lv.mount) mounts.push({ mount: l.lv.mount, fstype: l.lv.fstype, spec: l.mapperPath, fsoptions: l.lv.fsoptions, dev: l.dev });
      }
    });
  }

  // The sysroot: / first, then /boot and /boot/efi inside it.
  const sysroot = join(work, 'sysroot');
  await mkdir(sysroot);
  const byMount = (m: string) => mounts.find((x) => x.mount === m);
  const root = byMount('/')!;
  await mount(td, root.dev, sysroot, root.fstype);
  // The EFI system partition is made but not mounted: OSTree writes its BLS entries to
  // /boot, and the boot loader's own files come with the OS image (bootupd, grub2-install).
  const boot = byMount('/boot');
  if (boot) {
    await mkdir(join(sysroot, 'boot'), { recursive: true });
    await mount(td, boot.dev, join(sysroot, 'boot'), boot.fstype);
  }

  const refspec = `${setup.remote}:${setup.ref}`;
  const stateVar = join(sysroot, 'ostree', 'deploy', setup.osname, 'var');
  await task(progress, `Initializing the OSTree sysroot for ${setup.osname}`, async () => {
    await runOk('ostree', ['admin', 'init-fs', sysroot]);
    await runOk('ostree', ['admin', 'os-init', `--sysroot=${sysroot}`, setup.osname]);
    // A /var of its own goes where the stateroot's var is, with what os-init put there.
    const varVol = byMount('/var');
    if (varVol) {
      const staged = join(work, 'var-skeleton');
      await runOk('cp', ['-a', stateVar, staged]);
      await mount(td, varVol.dev, stateVar, varVol.fstype);
      await runOk('cp', ['-a', `${staged}/.`, `${stateVar}/`]);
    }
    // The installed host keeps verifying its upgrades with the same keys (its remote's own keyring).
    await addSetupRemote(`${sysroot}/ostree/repo`, setup, keys);
  });

  const rootKargs = root.spec.startsWith('/dev/mapper/')
    ? [`root=${root.spec}`, ...layoutLvKargs(layout, '/')]
    : [`root=${root.spec}`];
  const swap = mounts.find((m) => m.mount === 'swap');
  const kargs = [...rootKargs, ...(swap?.spec.startsWith('/dev/mapper/') ? layoutLvKargs(layout, 'swap') : []), 'rw', ...(ks.bootloader?.append ?? [])];

  // libostree keeps the sysroot and repo open: close them, or the file systems cannot unmount.
  const host = await LocalHost.open(sysroot);
  td.defer('close the sysroot', () => host.close());
  const tx = await host.rebase(refspec, { osname: setup.osname, kargs }, { progress });
  const dep = host.sysroot.deployments[0];
  const commit = host.sysroot.readCommit(dep.checksum);
  await host.close();

  const target = new Target(dep.path, stateVar);
  const configured: string[] = [];
  await task(progress, 'Configuring /etc', async () => {
    try {
      const etc = await configureEtc(ks, target, mounts);
      configured.push(...etc.done, ...(await applyAccounts(ks, target)));
      warnings.push(...etc.warnings);
    } catch (err) {
      throw new KickstartApplyError('configuring /etc', (err as Error).message, { cause: err });
    }
  });

  await task(progress, 'Installing the boot loader', async () => {
    const bootVol = boot ?? root;
    if (!layout.partitions.some((p) => p.fstype === 'biosboot') && ks.bootloader?.location !== 'none' && !ks.bootloader?.disabled) {
      // Anaconda refuses this; an explicit `bootloader` line here is refused too, a kickstart without one only warned.
      const why = 'no BIOS boot partition for GRUB (add reqpart, or part biosboot --fstype=biosboot --size=1)';
      if (ks.bootloader) throw new KickstartApplyError('boot loader', `${ks.bootloader.at.file}:${ks.bootloader.at.line}: ${why}`);
      warnings.push(`${why}: no boot loader installed`);
      return;
    }
    if (!bootVol.spec.startsWith('UUID=')) throw new KickstartApplyError('boot loader', `GRUB needs /boot on a partition (${bootVol.spec}); add reqpart --add-boot or part /boot`);
    const r = await installBootloader(ks, {
      disk,
      sysroot,
      boot: { uuid: bootVol.spec.slice(5), fstype: bootVol.fstype, separate: !!boot },
      deploymentEtc: join(dep.path, 'etc'),
    });
    if (r.installed) configured.push(r.note);
    else warnings.push(r.note);
  });

  if (ks.post.length) {
    // The new root as a booted host sees it: its /var, /sysroot, /boot, API file systems.
    const postTd = new Teardown();
    try {
      await bind(postTd, stateVar, join(dep.path, 'var'));
      await bind(postTd, sysroot, join(dep.path, 'sysroot'));
      await bind(postTd, join(sysroot, 'boot'), join(dep.path, 'boot'));
      await runOk('mount', ['-t', 'proc', 'proc', join(dep.path, 'proc')]);
      postTd.defer('unmount proc', () => runOk('umount', [join(dep.path, 'proc')]));
      await bind(postTd, '/sys', join(dep.path, 'sys'), { recursive: true });
      await bind(postTd, '/dev', join(dep.path, 'dev'), { recursive: true });
      for (const d of ['tmp', 'run']) {
        await runOk('mount', ['-t', 'tmpfs', '-o', 'mode=1777', 'tmpfs', join(dep.path, d)]);
        postTd.defer(`unmount ${d}`, () => runOk('umount', [join(dep.path, d)]));
      }
      // What systemd-tmpfiles makes at first boot, so that %post sees a usual /var.
      await run('systemd-tmpfiles', [`--root=${dep.path}`, '--create', '--prefix=/var']);
      for (const [i, s] of ks.post.entries()) {
        const inTarget = s.nochroot ? null : (s.log ?? `/var/log/atomhost/ks-script-post-${i}.log`);
        const logPath = inTarget ? target.resolve(inTarget) : join(stateVar, 'log', 'atomhost', `ks-script-post-${i}.log`);
        const r = await task(progress, `Running %post (${s.at.file}:${s.at.line})${s.nochroot ? ' --nochroot' : ''}`, () =>
          runScript(s, i, {
            chroot: s.nochroot ? null : dep.path,
            workdir: work,
            logPath,
            logInTarget: inTarget ?? `/var/log/atomhost/ks-script-post-${i}.log`,
            // Anaconda's variable for --nochroot scripts: where the installed system is.
            env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', ANA_INSTALL_PATH: dep.path, ATOMHOST_SYSROOT: sysroot },
          }),
        );
        scripts.push(r);
        if (r.exitCode !== 0 && s.erroronfail) throw new KickstartScriptError('%post', s.at, r.exitCode, r.tail);
        if (r.exitCode !== 0) warnings.push(`%post at ${s.at.file}:${s.at.line} exited with ${r.exitCode} (log ${r.logInTarget})`);
      }
    } finally {
      const failures = await postTd.run();
      if (failures.length) warnings.push(...failures);
    }
  }

  return {
    volumes,
    deployment: { osname: setup.osname, refspec, checksum: dep.checksum, version: commit.version, revision: tx.revision ?? null },
    kargs,
    configured,
    scripts,
    warnings,
    finish: ks.finish?.action ?? null,
  };
}

/** rd.lvm.lv= for the LV at a mount point, so that the initramfs activates it. */
function layoutLvKargs(layout: Layout, mountPoint: string): string[] {
  const lv = layout.lvs.find((l) => l.mount === mountPoint);
  return lv ? [`rd.lvm.lv=${lv.vg}/${lv.name}`] : [];
}

