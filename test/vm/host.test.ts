// A real host: the composed OS (test/vm/os) installed by atomhost's kickstart
// (test/vm/host.ks) boots in qemu through GRUB, its own kernel and initramfs,
// ostree-prepare-root and systemd, and goes through real reboots. Each scenario is
// checked with tools inside the guest that are not atomhost: ostree admin status, the
// GRUB environment block, the journal, the files of the running /usr.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureVmImage, ensureVmOs, GUEST_REPO_PORT, publish, type VmOs } from '../../sandbox/vm-os.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { Vm } from '../../sandbox/vm.js';
import { requireCommand, requireRoot } from '../helpers/capability.js';

let os: VmOs;
let vm: Vm;
let server: StaticServer;
let dir: string;

interface GuestStatus {
  status: { deployments: { booted: boolean; version: string | null; revision: string | null; default?: boolean }[] };
}

const status = async (): Promise<GuestStatus> => JSON.parse(await vm.ok('atomhost status --json')) as GuestStatus;
const release = async () => (await vm.ok('cat /usr/share/atomhost-os/release')).trim();
const grubenv = async () => vm.ok('grub-editenv /boot/grub/grubenv list');
/** Waits for the boot to finish (the reconcile and health units included) and prints failed units. */
const settled = async () => {
  const r = await vm.run('systemctl is-system-running --wait; systemctl --failed --no-legend --plain', 300_000);
  return r.stdout;
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'atomhost-vm-'));
});

after(async () => {
  await vm?.kill();
  await server?.close();
  if (vm && process.exitCode) process.stderr.write(`${await vm.serialTail(80)}\n`);
  await rm(dir, { recursive: true, force: true });
});

test('a: the kickstart-installed image boots; atomhostd answers for the booted deployment; /usr is read-only', { timeout: 1_800_000 }, async (t) => {
  if (!requireRoot(t, 'loop devices and mounts to install the image') || !(await requireCommand(t, 'qemu-system-x86_64')) || !(await requireCommand(t, 'mmdebstrap'))) return;
  os = await ensureVmOs();
  const image = await ensureVmImage(os);
  const disk = join(dir, 'disk.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', disk]);
  await publish(os, 'v1');
  server = await serveDirectory(os.repo);
  vm = new Vm({ disk, dir, forwards: [{ guest: GUEST_REPO_PORT, host: server.port }] });
  await vm.start();
  const state = await settled();
  assert.match(state, /^(running|degraded)/, state);
  assert.doesNotMatch(state, /atomhost/, `no atomhost unit failed:\n${state}`);

  const s = await status();
  assert.equal(s.status.deployments.length, 1);
  assert.equal(s.status.deployments[0].booted, true, 'atomhostd reports the booted deployment');
  assert.equal(s.status.deployments[0].version, '1.0');
  assert.match(await vm.ok('systemctl is-active atomhostd.service'), /^active/m, 'atomhostd was started by D-Bus activation');
  assert.match(await vm.ok('ostree admin status'), new RegExp(`^\\* atomhost-os ${os.stable.v1}\\.0\\n\\s+Version: 1\\.0`, 'm'));
  assert.match(await vm.ok('findmnt -no OPTIONS /usr'), /(^|,)ro(,|$)/, '/usr is mounted read-only');
  const touch = await vm.run('touch /usr/atomhost-write-test');
  assert.notEqual(touch.exitCode, 0, 'writing /usr fails');
  assert.equal(await release(), '1.0');
  assert.match(await vm.ok('cat /proc/cmdline'), /root=UUID=\S+ rw console=ttyS0,115200 panic=5 ostree=\/ostree\/boot\.\d\/atomhost-os\//, 'the kickstart kernel arguments');
});

test('c: upgrade → reboot runs 2.0 and the gate clears the boot counter; rollback → reboot runs 1.0', { timeout: 1_800_000 }, async (t) => {
  if (!vm) return t.skip('the image did not boot');
  await publish(os, 'v2');
  const up = await vm.run('atomhost upgrade');
  assert.equal(up.exitCode, 0, up.stdout);
  assert.match(up.stdout, /Staged 2\.0 .*boot counting armed/);
  assert.match(await grubenv(), /^boot_counter=3$/m, 'the new default has 3 tries');
  // Staged, as rpm-ostree does: finalized at shutdown, so an /etc edit made now is kept.
  assert.match(await vm.ok('ostree admin status'), /\(staged\)/);
  assert.equal((await status()).status.deployments.filter((d) => (d as { staged?: boolean }).staged).length, 1, 'status shows the staged deployment');
  await vm.ok('echo edited-after-staging > /etc/atomhost-vm-note');

  await vm.reboot();
  await settled();
  assert.equal(await release(), '2.0', 'the new /usr runs');
  assert.equal((await vm.ok('cat /etc/atomhost-vm-note')).trim(), 'edited-after-staging', 'the /etc edit made after staging was carried over');
  const s = await status();
  assert.equal(s.status.deployments.find((d) => d.booted)?.version, '2.0');
  const env = await grubenv();
  assert.doesNotMatch(env, /^boot_counter=/m, 'the health gate cleared the counter');
  assert.match(env, /^boot_success=1$/m);
  assert.match(await vm.ok('journalctl -b -u atomhost-health.service --no-pager -o cat'), /is healthy/);

  const rb = await vm.run('atomhost rollback');
  assert.equal(rb.exitCode, 0, rb.stdout);
  await vm.reboot();
  await settled();
  assert.equal(await release(), '1.0');
  assert.match(await vm.ok('ostree admin status'), new RegExp(`^\\* atomhost-os ${os.stable.v1}\\.\\d\\n\\s+Version: 1\\.0`, 'm'));
});

test('e: a release that never reaches userspace falls back in the boot loader by itself, once, and is never picked again', { timeout: 2_400_000 }, async (t) => {
  if (!vm) return t.skip('the image did not boot');
  const rb = await vm.run(`atomhost rebase origin:${os.broken.ref}`);
  assert.equal(rb.exitCode, 0, rb.stdout);
  assert.match(await grubenv(), /^boot_counter=3$/m);
  await vm.poweroff();

  // Each boot of the broken release panics (its init exits; panic=5) and qemu ends.
  let failed = 0;
  for (;;) {
    const r = await vm.boot(400_000);
    if (r === 'up') break;
    failed++;
    assert.ok(failed <= 3, `the boot loader kept booting the broken release (${failed} boots)\n${await vm.serialTail()}`);
  }
  assert.equal(failed, 3, 'three tries, then the previous entry');
  await settled();
  assert.equal(await release(), '1.0', 'the previous release runs');
  const env = await grubenv();
  assert.doesNotMatch(env, /^boot_counter=/m, 'atomhost saw the fallback and stopped the count');
  assert.match(await vm.ok('journalctl -b -u atomhost-reconcile.service --no-pager -o cat'), /never reached its health gate/);
  assert.match(await vm.ok('ostree admin status'), /^\* atomhost-os .*\n\s+Version: 1\.0/m, 'the running deployment is the default again');

  // No loop: the next boot comes straight up on the same release.
  await vm.reboot();
  assert.equal(await release(), '1.0');
  const revs = JSON.parse(await vm.ok('atomhost revisions --json')) as { os: { checksum: string }; state: string; reason?: string }[];
  const broken = revs.find((r) => r.os.checksum === os.broken.commit);
  assert.equal(broken?.state, 'failed', 'the broken release is recorded as failed (never a fallback target)');
  assert.match(broken?.reason ?? '', /boot loader fell back/);
});
