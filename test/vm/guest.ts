// What the VM test files share: the cached image booted on a copy-on-write disk of its
// own, and questions asked inside the guest with tools that are not atomhost's.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureVmImage, ensureVmOs, GUEST_REPO_PORT, publish, type VmOs } from '../../sandbox/vm-os.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { Vm } from '../../sandbox/vm.js';

export interface GuestStatus {
  status: { deployments: { booted: boolean; staged?: boolean; version: string | null; revision: { id: string } | null; checksum: string }[] };
}

export class Guest {
  constructor(
    readonly vm: Vm,
    readonly os: VmOs,
    readonly dir: string,
    readonly server: StaticServer,
  ) {}

  /**
   * The cached OS and image (composed and installed once per input hash), a qcow2 overlay
   * and a linked copy of the OS repository for this file, served at 10.0.2.100:8080 and the servers `servers`
   * starts (forwarded as it says); boots once.
   */
  static async boot(servers?: (dir: string) => Promise<{ guest: number; host: number }[]>): Promise<Guest> {
    const dir = await mkdtemp(join(tmpdir(), 'atomhost-vm-'));
    const cached = await ensureVmOs();
    const image = await ensureVmImage(cached);
    const disk = join(dir, 'disk.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', disk]);
    // A repository of this file's own (hard links: objects never change, refs and the summary
    // are replaced by rename): test files that run side by side publish releases independently.
    const os = { ...cached, repo: join(dir, 'repo') };
    await execa('cp', ['-al', cached.repo, os.repo]);
    await publish(os, 'v1');
    const server = await serveDirectory(os.repo);
    const vm = new Vm({ disk, dir, forwards: [{ guest: GUEST_REPO_PORT, host: server.port }, ...(servers ? await servers(dir) : [])] });
    const g = new Guest(vm, os, dir, server);
    try {
      await vm.start();
    } catch (err) {
      process.exitCode = 1;
      await g.dispose();
      throw err;
    }
    return g;
  }

  async status(): Promise<GuestStatus> {
    return JSON.parse(await this.vm.ok('atomhost status --json')) as GuestStatus;
  }

  /** The release file of the /usr that runs. */
  async release(): Promise<string> {
    return (await this.vm.ok('cat /usr/share/atomhost-os/release')).trim();
  }

  grubenv(): Promise<string> {
    return this.vm.ok('grub-editenv /boot/grub/grubenv list');
  }

  /** Waits for the boot to finish (the reconcile and health units included); returns the state and failed units. */
  async settled(): Promise<string> {
    return (await this.vm.run('systemctl is-system-running --wait; systemctl --failed --no-legend --plain', 300_000)).stdout;
  }

  /** What a person would look at when a unit misbehaves: its status, its journal, the stack's view. */
  async why(unit: string): Promise<string> {
    return (await this.vm.run(`systemctl status --no-pager -n 0 ${unit}; journalctl -b --no-pager -n 25 -u ${unit}; atomhost stack status`, 120_000)).stdout;
  }

  /** Stops everything; the serial console's tail goes to stderr when the file failed. */
  async dispose(): Promise<void> {
    await this.vm.kill();
    await this.server.close();
    if (process.exitCode) process.stderr.write(`${await this.vm.serialTail(80)}\n`);
    await rm(this.dir, { recursive: true, force: true });
  }
}
