// The real host in qemu (TCG), side by side with the raw tools, in one run:
//  - boot: qemu start → the guest is up (multi-user) → atomhostd answers `atomhost status`
//  - upgrade with its reboot: `atomhost upgrade` (staged) + reboot until the health gate
//    ran, against `ostree admin upgrade --stage` + reboot of the same change, each on a
//    fresh copy-on-write disk of the same installed image (goal ≤ 1.1×)
//  - compose: `atomhost compose` of the VM's 1.0 treefile with an empty cache against
//    mmdebstrap of the same suite and packages alone; the commit's size against the tarball's
// BENCH_VM_COMPOSE=0 skips the compose rows (about 8 minutes); BENCH_VM_BOOT=0 skips the
// boot and upgrade rows (no qemu), so the compose rows can run on their own.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ensureVmImage, ensureVmOs, GUEST_REPO_PORT, publish, type VmOs } from '../sandbox/vm-os.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { Vm } from '../sandbox/vm.js';
import { BASE_PACKAGES, compose } from '../compose/compose.js';
import { parseTreefile } from '../compose/treefile.js';
import { compare, type BenchResult, type BenchRow } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const TREEFILE = join(here, '..', '..', 'test', 'vm', 'os', 'atomhost-os-1.0.yaml');

const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;

async function withGuest<T>(os: VmOs, image: string, fn: (vm: Vm) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-bench-vm-'));
  const server = await serveDirectory(os.repo);
  const disk = join(dir, 'disk.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', disk]);
  const vm = new Vm({ disk, dir, forwards: [{ guest: GUEST_REPO_PORT, host: server.port }] });
  try {
    return await fn(vm);
  } finally {
    await vm.kill();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const settled = (vm: Vm) => vm.run('systemctl is-system-running --wait', 600_000);

/** Runs `cmd` in the booted guest, reboots, and waits until the boot settled; seconds. */
async function upgradeAndReboot(vm: Vm, cmd: string): Promise<number> {
  const t = process.hrtime.bigint();
  await vm.ok(cmd, 600_000);
  await vm.reboot(600_000);
  await settled(vm);
  return since(t);
}

/** Boot to atomhostd, and a staged upgrade with its reboot, each against the raw path. */
async function bootRows(rows: BenchRow[], notes: string[]): Promise<void> {
  const os = await ensureVmOs();
  const image = await ensureVmImage(os);

  await publish(os, 'v1');
  await withGuest(os, image, async (vm) => {
    const t = process.hrtime.bigint();
    await vm.start(600_000);
    const up = since(t);
    await settled(vm);
    await vm.ok('atomhost status >/dev/null', 300_000);
    const ready = since(t);
    rows.push(compare('boot to atomhostd answering', 's', ready, 'boot to the guest agent (multi-user)', up));
  });

  await publish(os, 'v2');
  const atomhost = await withGuest(os, image, async (vm) => {
    await vm.start(600_000);
    await settled(vm);
    return upgradeAndReboot(vm, 'atomhost upgrade');
  });
  const ostree = await withGuest(os, image, async (vm) => {
    await vm.start(600_000);
    await settled(vm);
    return upgradeAndReboot(vm, 'ostree admin upgrade --stage');
  });
  await publish(os, 'v1');
  rows.push(compare('upgrade 1.0 → 2.0 + reboot (atomhost)', 's', atomhost, 'ostree admin upgrade --stage + reboot', ostree, '≤ 1.1×'));
  notes.push('one round each under TCG: boots vary by several seconds; the upgrade rows include the reboot and the boot-time health gate');
}

export async function benchVm(): Promise<BenchResult> {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  if (process.env.BENCH_VM_BOOT !== '0') await bootRows(rows, notes);

  if (process.env.BENCH_VM_COMPOSE !== '0') {
    const work = await mkdtemp(join(tmpdir(), 'atomhost-bench-compose-'));
    try {
      const tf = parseTreefile(TREEFILE);
      let t = process.hrtime.bigint();
      await execa('ostree', ['init', '--mode=archive', `--repo=${join(work, 'repo')}`]);
      await compose(tf, join(work, 'repo'), { cache: join(work, 'cache') });
      const composeSecs = since(t);
      t = process.hrtime.bigint();
      const tarball = join(work, 'raw.tar');
      // The same Debian root compose starts from (packages, no recommends), without the OSTree layout.
      const packages = [...new Set([...BASE_PACKAGES, ...tf.packages])].sort();
      await execa('mmdebstrap', ['--quiet', '--mode=root', '--variant=apt', '--format=tar', `--include=${packages.join(',')}`, '--aptopt=APT::Install-Recommends "false"', tf.suite, tarball, tf.mirror]);
      const rawSecs = since(t);
      rows.push(compare('compose 1.0 (empty cache)', 's', composeSecs, 'mmdebstrap of the same packages', rawSecs));
      const repoBytes = Number((await execa('du', ['-sb', join(work, 'repo')])).stdout.split('\t')[0]);
      rows.push(compare('composed commit (archive repo, compressed)', 'bytes', repoBytes, 'mmdebstrap tarball', (await stat(tarball)).size));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return { name: 'vm (qemu TCG)', rows, notes };
}
