// npm run vm -- [--image IMG] [--keep] [CMD…]: boots the composed OS, installed by atomhost's
// kickstart (both built once and cached), in qemu; runs CMD in the guest as root and prints
// its output; powers off. --keep leaves the guest running with its serial console on this
// terminal (Ctrl-A X quits qemu). The disk is a copy-on-write overlay kept in
// /var/tmp/atomhost-vm (--fresh starts again from the installed image).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { progressView } from '../cli/progress-view.js';
import { serveDirectory } from './http-server.js';
import { ensureVmImage, ensureVmOs, GUEST_REPO_PORT } from './vm-os.js';
import { Vm } from './vm.js';

const args = process.argv.slice(2);
const take = (flag: string) => {
  const i = args.indexOf(flag);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
};
const keep = take('--keep');
const fresh = take('--fresh');
const ii = args.indexOf('--image');
const givenImage = ii >= 0 ? args.splice(ii, 2)[1] : null;
const command = args.join(' ');
if (!keep && !command) {
  process.stderr.write('usage: npm run vm -- [--image IMG] [--fresh] [--keep] [CMD…]\n');
  process.exit(2);
}

const view = progressView({ json: false, jsonLines: false });
const os = await ensureVmOs(view.sink);
const image = givenImage ?? (await ensureVmImage(os, view.sink));
view.done();
const dir = '/var/tmp/atomhost-vm';
await mkdir(dir, { recursive: true });
const disk = join(dir, 'disk.qcow2');
if (fresh || !existsSync(disk)) {
  await rm(disk, { force: true });
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', disk]);
}
const server = await serveDirectory(os.repo);
const vm = new Vm({ disk, dir, forwards: [{ guest: GUEST_REPO_PORT, host: server.port }] });
let code = 0;
try {
  if (keep) {
    // The serial console on this terminal instead of a log file.
    const qemuArgs = vm.args().map((a) => (a === `file:${vm.serialLog}` ? 'mon:stdio' : a));
    process.stderr.write(`booting ${image} (the OS repository is served to the guest at http://10.0.2.100:${GUEST_REPO_PORT}); Ctrl-A X quits\n`);
    code = await new Promise<number>((resolve) => spawn('qemu-system-x86_64', qemuArgs, { stdio: 'inherit' }).once('exit', (c) => resolve(c ?? 1)));
  } else {
    process.stderr.write(`booting ${image} under qemu (TCG, about a minute)…\n`);
    await vm.start();
    const r = await vm.run(command, 1_800_000);
    process.stdout.write(r.stdout.endsWith('\n') || !r.stdout ? r.stdout : `${r.stdout}\n`);
    process.stderr.write(`exit code ${r.exitCode}\n`);
    code = r.exitCode;
    await vm.poweroff();
  }
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  code = 1;
} finally {
  await vm.kill();
  await server.close();
}
process.exit(code);
