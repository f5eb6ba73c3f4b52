// A real host: the composed OS (test/vm/os) installed by atomhost's kickstart
// (test/vm/host.ks) boots in qemu through GRUB, its own kernel and initramfs,
// ostree-prepare-root and systemd, and goes through real reboots. Each scenario is
// checked with tools inside the guest that are not atomhost: ostree admin status, the
// GRUB environment block, the journal, the files of the running /usr, curl against the
// running container. Order: a (first boot), e (a release that never boots), b (a whole-stack
// upgrade), c (its rollback), d (a stack that fails its gate after the reboot), f (the update
// agent under a FleetLock: it waits for the slot, drains, reboots by itself, and after the
// boot, with no command, gates and gives the slot back).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publish } from '../../sandbox/vm-os.js';
import { GUEST_HOST, type Vm } from '../../sandbox/vm.js';
import { buildAndPush, startRegistry, type Registry } from '../../sandbox/registry.js';
import { requireCommand, requireEarlier, requireRoot } from '../helpers/capability.js';
import { startEtcd, type EtcdCluster } from '../../sandbox/etcd.js';
import { EtcdClient } from '../../fleet/etcd.js';
import { createFleetLockServer, type FleetLockServer } from '../../fleet/server.js';
import { holdersInEtcd, lockBody, post } from '../fleet/helpers.js';
import { MESSAGE_IDS } from '../../agent/journal.js';
import { createServer } from 'node:net';
import { Guest } from './guest.js';

let g: Guest;
let vm: Vm;
let registry: Registry;
/** The registry as the guest reaches it (a forward to the docker-registry on 127.0.0.1). */
const GUEST_REGISTRY = `${GUEST_HOST}:5000`;
const KUBELET_PORT = 10250;
const kubelet: Record<string, string> = {};
/** The FleetLock server of f, as the guest reaches it; its port on this machine is reserved in a (forwards are fixed at boot). */
const GUEST_FLEETLOCK_PORT = 4080;
let fleetLockPort = 0;
let etcd: EtcdCluster | undefined;
let fleetLock: FleetLockServer | undefined;

/** A free port on 127.0.0.1 (the FleetLock server of f listens there later). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const status = () => g.status();
const release = () => g.release();
const grubenv = () => g.grubenv();
const settled = () => g.settled();

after(async () => {
  await g?.dispose();
  await registry?.stop();
  await fleetLock?.stop();
  await etcd?.stop();
});

test('a: the kickstart-installed image boots; atomhostd answers for the booted deployment; /usr is read-only', { timeout: 1_800_000 }, async (t) => {
  if (!requireRoot(t, 'loop devices and mounts to install the image') || !(await requireCommand(t, 'qemu-system-x86_64')) || !(await requireCommand(t, 'mmdebstrap'))) return;
  g = await Guest.boot(async (dir) => {
    registry = await startRegistry(join(dir, 'registry'));
    // kubelet stand-ins: v1 and v2 serve their version; v3 is a release that cannot start.
    for (const v of ['v1', 'v2']) {
      kubelet[v] = await buildAndPush(registry.host, `kubelet:${v}`, { layers: [{ busybox: true, files: { 'www/index.html': `kubelet ${v}\n` } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${KUBELET_PORT}`, '-h', '/www'] });
    }
    kubelet.v3 = await buildAndPush(registry.host, 'kubelet:v3', { layers: [{ busybox: true }], cmd: ['/bin/sh', '-c', 'echo "kubelet v3: cannot read /etc/kubelet.conf" >&2; exit 3'] });
    fleetLockPort = await freePort();
    return [{ guest: 5000, host: Number(registry.host.split(':')[1]) }, { guest: GUEST_FLEETLOCK_PORT, host: fleetLockPort }];
  });
  vm = g.vm;
  const state = await settled();
  assert.match(state, /^(running|degraded)/, state);
  assert.doesNotMatch(state, /atomhost/, `no atomhost unit failed:\n${state}`);

  const s = await status();
  assert.equal(s.status.deployments.length, 1);
  assert.equal(s.status.deployments[0].booted, true, 'atomhostd reports the booted deployment');
  assert.equal(s.status.deployments[0].version, '1.0');
  assert.match(await vm.ok('systemctl is-active atomhostd.service'), /^active/m, 'atomhostd was started by D-Bus activation');
  const pkgVersion = (JSON.parse(readFileSync(join(fileURLToPath(import.meta.url), '../../../../package.json'), 'utf8')) as { version: string }).version;
  assert.equal((await vm.ok("dpkg-query -W -f='${Status} ${Version}' atomhost")).trim(), `install ok installed ${pkgVersion}+node${process.versions.node}`, 'atomhost is a package of the OS (compose installed its .deb)');
  assert.match(await vm.ok('ostree admin status'), new RegExp(`^\\* atomhost-os ${g.os.stable.v1}\\.0\\n\\s+Version: 1\\.0`, 'm'));
  assert.match(await vm.ok('findmnt -no OPTIONS /usr'), /(^|,)ro(,|$)/, '/usr is mounted read-only');
  const touch = await vm.run('touch /usr/atomhost-write-test');
  assert.notEqual(touch.exitCode, 0, 'writing /usr fails');
  assert.equal(await release(), '1.0');
  assert.match(await vm.ok('cat /proc/cmdline'), /root=UUID=\S+ rw console=ttyS0,115200 panic=5 ostree=\/ostree\/boot\.\d\/atomhost-os\//, 'the kickstart kernel arguments');
});

test('e: a release that never reaches userspace falls back in the boot loader by itself, once, and is never picked again', { timeout: 2_400_000 }, async (t) => {
  if (!requireEarlier(t, vm, 'the image did not boot')) return;
  // Two tries instead of three (a boot of this release costs a minute under TCG); b checks the default.
  await vm.ok(`mkdir -p /etc/atomhost && echo ATOMHOST_BOOT_TRIES=2 > /etc/atomhost/atomhostd.env && systemctl stop atomhostd`);
  const rb = await vm.run(`atomhost rebase origin:${g.os.broken.ref}`);
  assert.equal(rb.exitCode, 0, rb.stdout);
  assert.match(rb.stdout, /boot counting armed: 2 tries/);
  assert.match(await grubenv(), /^boot_counter=2$/m);
  await vm.poweroff();

  // Each boot of the broken release panics (its init exits; panic=5) and qemu ends.
  let failed = 0;
  for (;;) {
    const r = await vm.boot(400_000);
    if (r === 'up') break;
    failed++;
    assert.ok(failed <= 2, `the boot loader kept booting the broken release (${failed} boots)\n${await vm.serialTail()}`);
  }
  assert.equal(failed, 2, 'two tries, then the previous entry');
  await vm.ok('rm /etc/atomhost/atomhostd.env && systemctl stop atomhostd');
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
  const broken = revs.find((r) => r.os.checksum === g.os.broken.commit);
  assert.equal(broken?.state, 'failed', 'the broken release is recorded as failed (never a fallback target)');
  assert.match(broken?.reason ?? '', /boot loader fell back/);
});

/** What the kubelet container serves right now (curl inside the guest, against the running container). */
const kubeletServes = async () => (await vm.run(`curl -sf http://127.0.0.1:${KUBELET_PORT}/index.html`)).stdout.trim();
// The stack: kubelet as a system container, and containerd, which the OS ships (disabled),
// as a host unit in the engine role.
const stack = (version: string, os: string, image: string) => `apiVersion: atomhost.io/v1alpha1
kind: Stack
metadata: { name: node, version: "${version}" }
os: { version: "${os}" }
containers:
  - { name: kubelet, image: "${GUEST_REGISTRY}/${image}", role: kubelet, probe: { http: "http://127.0.0.1:${KUBELET_PORT}/index.html" } }
units:
  - { name: containerd.service, role: engine, probe: { command: [ctr, version] } }
`;
const writeStack = (text: string) => vm.ok(`cat > /etc/atomhost/stack.yaml <<'EOF'\n${text}EOF`);

test('b: a whole-stack upgrade (OS 2.0 + kubelet v2) is staged as one revision; after the reboot both run and the gate passes', { timeout: 1_800_000 }, async (t) => {
  if (!requireEarlier(t, vm, 'the image did not boot')) return;
  await vm.ok(`mkdir -p /etc/containers/registries.conf.d && printf '[[registry]]\nlocation = "${GUEST_REGISTRY}"\ninsecure = true\n' > /etc/containers/registries.conf.d/50-test-registry.conf`);
  // The running stack: kubelet v1 installed by hand, live, through the gate.
  const inst = await vm.run(`atomhost container install --role kubelet ${GUEST_REGISTRY}/kubelet:v1`, 600_000);
  assert.equal(inst.exitCode, 0, inst.stdout);
  assert.equal(await kubeletServes(), 'kubelet v1');

  await publish(g.os, 'v2');
  await writeStack(stack('2026.11.2', '2.0', 'kubelet:v2'));
  assert.equal((await vm.run('atomhost stack follow /etc/atomhost/stack.yaml')).exitCode, 0);
  const preview = JSON.parse(await vm.ok('atomhost upgrade --preview --json', 600_000)) as { to: { version: string }; containers: { name: string; from: string | null; to: string | null }[] };
  assert.equal(preview.to.version, '2.0');
  assert.deepEqual(preview.containers.map((c) => [c.name, c.from, c.to]), [['kubelet', kubelet.v1, kubelet.v2]], 'the preview shows the OS and the container change together');
  const up = await vm.run('atomhost upgrade', 600_000);
  assert.equal(up.exitCode, 0, up.stdout);
  assert.match(up.stdout, /Deployed stack node 2026\.11\.2 \(OS 2\.0, 1 containers, 1 host units\)/);
  assert.match(await grubenv(), /^boot_counter=3$/m, 'the new default has 3 tries');
  // Staged, as rpm-ostree does: finalized at shutdown, so an /etc edit made now is kept.
  assert.match(await vm.ok('ostree admin status'), /\(staged\)/);
  assert.equal((await status()).status.deployments.filter((d) => (d as { staged?: boolean }).staged).length, 1, 'status shows the staged deployment');
  assert.equal(await kubeletServes(), 'kubelet v1', 'nothing of the new stack runs before the reboot');
  // The booted revision is the reference: a container change now would be judged against the
  // running stack but written over the staged one, so it is refused with the reason.
  const during = await vm.run(`atomhost container install --name web ${GUEST_REGISTRY}/kubelet:v2`, 300_000);
  assert.notEqual(during.exitCode, 0, during.stdout);
  assert.match(during.stdout, /an OS change is pending: revision [0-9a-f]{12} is the default but the host runs deployment \d/);
  assert.equal((await status()).status.deployments.filter((d) => (d as { staged?: boolean }).staged)[0]?.version, '2.0', 'the staged upgrade stands');
  assert.notEqual((await vm.run('systemctl is-active containerd.service')).stdout.trim(), 'active', 'containerd is not running yet (the OS disables it)');
  await vm.ok('echo edited-after-staging > /etc/atomhost-vm-note');

  await vm.reboot();
  await settled();
  assert.equal(await release(), '2.0', 'the new /usr runs');
  assert.equal(await kubeletServes(), 'kubelet v2', `the new container runs\n${await g.why('kubelet.service')}`);
  assert.match(await vm.ok('runc --root /run/atomhost/runc list'), /^kubelet\s+\d+\s+running/m, 'runc runs it');
  // containerd, the OS's unit, runs as the stack's engine: before kubelet, gated with it.
  assert.equal((await vm.run('systemctl is-active containerd.service')).stdout.trim(), 'active');
  assert.match(await vm.ok('systemctl show -p Before containerd.service'), /atomhost-role-engine\.target/);
  const roles = JSON.parse((await vm.run('atomhost stack status --json')).stdout) as { healthy: boolean; roles: { role: string; containers: { name: string; healthy: boolean; detail: string }[] }[] };
  assert.deepEqual(roles.roles.map((r) => [r.role, r.containers.map((c) => `${c.name}:${c.healthy}`)]), [['engine', ['containerd.service:true']], ['kubelet', ['kubelet:true']]], `${JSON.stringify(roles.roles)}\n${await g.why('kubelet.service')}`);
  assert.equal((await vm.ok('cat /etc/atomhost-vm-note')).trim(), 'edited-after-staging', 'the /etc edit made after staging was carried over');
  const s = await status();
  assert.equal(s.status.deployments.find((d) => d.booted)?.version, '2.0');
  const env = await grubenv();
  assert.doesNotMatch(env, /^boot_counter=/m, 'the health gate cleared the counter');
  assert.match(env, /^boot_success=1$/m);
  assert.match(await vm.ok('journalctl -b -u atomhost-health.service --no-pager -o cat'), /is healthy/);
});

test('c: rollback → reboot runs OS 1.0 and kubelet v1 again', { timeout: 1_800_000 }, async (t) => {
  if (!requireEarlier(t, vm, 'the image did not boot')) return;
  const rb = await vm.run('atomhost rollback');
  assert.equal(rb.exitCode, 0, rb.stdout);
  await vm.reboot();
  await settled();
  assert.equal(await release(), '1.0');
  assert.equal(await kubeletServes(), 'kubelet v1', `the old container runs with the old OS\n${await g.why('kubelet.service')}`);
  assert.notEqual((await vm.run('systemctl is-active containerd.service')).stdout.trim(), 'active', 'the old revision does not name containerd: the OS keeps it off');
  assert.match(await vm.ok('ostree admin status'), new RegExp(`^\\* atomhost-os ${g.os.stable.v1}\\.\\d\\n\\s+Version: 1\\.0`, 'm'));
  // b followed the stack after a live install, then staged the upgrade: the entry rolled back to
  // must still follow it, or the next upgrade would quietly be an OS-only one.
  assert.equal((await vm.ok('atomhost stack show')).trim(), '/etc/atomhost/stack.yaml', 'the rolled-back host still follows the stack');
});

// d once passed its gate here: after b's live install, stack follow and staged upgrade, the
// rollback in c returned to an entry that no longer followed the stack, so d's upgrade was an
// OS-only one that kept kubelet v1 (fixed in LocalHost #adoptLiveRevision; c now checks it).
test('d: a stack that fails its gate after the reboot falls back and reboots by itself; it is never picked again', { timeout: 1_800_000 }, async (t) => {
  if (!requireEarlier(t, vm, 'the image did not boot')) return;
  await writeStack(stack('2026.11.3', '2.0', 'kubelet:v3'));
  const up = await vm.run('atomhost upgrade', 600_000);
  assert.equal(up.exitCode, 0, up.stdout);
  assert.match(up.stdout, /Deployed stack node 2026\.11\.3 \(OS 2\.0, 1 containers/, 'the upgrade is the stack with kubelet v3');
  await vm.poweroff();
  // Boot 1: OS 2.0 with kubelet v3, which cannot start; the gate fails and reboots to the last healthy revision.
  const first = await vm.boot(600_000);
  if (first === 'up') {
    // The agent answered before the gate ended: wait for the host to reboot by itself.
    const end = await vm.waitExit(600_000);
    const seen = end === 'timeout' ? (await vm.run('cat /proc/cmdline; grub-editenv /boot/grub/grubenv list; ostree admin status; atomhost status; atomhost revisions | tail -20; systemctl status kubelet.service --no-pager | tail -15; journalctl -b -1 -u ostree-finalize-staged.service -o cat --no-pager | tail -15; journalctl -b -u atomhost-reconcile.service -u atomhost-health.service -o cat --no-pager | tail -40', 120_000)).stdout : '';
    assert.notEqual(end, 'timeout', `the host did not reboot after the failed gate\n${seen}`);
  }
  // Boot 2: the fallback.
  await vm.start();
  await settled();
  assert.equal(await release(), '1.0', 'the previous OS runs');
  assert.equal(await kubeletServes(), 'kubelet v1', 'the previous container runs');
  const revs = JSON.parse(await vm.ok('atomhost revisions --json')) as { containers: Record<string, { digest: string }>; state: string; reason?: string }[];
  const bad = revs.find((r) => r.containers.kubelet?.digest === kubelet.v3);
  assert.equal(bad?.state, 'failed', 'the failed stack is recorded as failed');
  assert.match(bad?.reason ?? '', /kubelet/);
  assert.match(await vm.ok('journalctl -b -1 -u atomhost-health.service --no-pager -o cat'), /kubelet/, 'the journal of the previous boot says why');
  const again = await vm.run('atomhost upgrade', 600_000);
  assert.equal(again.exitCode, 77, again.stdout);
  assert.match(again.stdout, /failed its health checks.*does not pick it again/s);
});

// The update agent's full cycle on a real host (issue #13): a real etcd and the real FleetLock
// server on this machine, reached by the guest through a restricted user-net forward. d left
// the host on OS 1.0 + kubelet v1 (the fallback), following /etc/atomhost/stack.yaml.
test('f: the update agent under a FleetLock waits for the slot, drains, reboots by itself; after the boot, with no command, the gate passes and the slot is given back', { timeout: 2_400_000 }, async (t) => {
  if (!requireEarlier(t, vm, 'the image did not boot') || !(await requireCommand(t, 'etcd'))) return;
  etcd = await startEtcd(1);
  fleetLock = createFleetLockServer({ etcd: new EtcdClient(etcd.clientUrls, { attemptTimeoutMs: 1500 }), slots: 1, lockTtlSeconds: 3600, log: () => {} });
  await new Promise<void>((r) => fleetLock!.listen(fleetLockPort, '127.0.0.1', r));
  const lockUrl = `http://127.0.0.1:${fleetLockPort}`;
  const holders = () => holdersInEtcd(etcd!.clientUrls, 'workers');
  // Another node holds the group's only slot.
  assert.equal((await post(`${lockUrl}/v1/pre-reboot`, lockBody('other-node', 'workers'))).status, 200);
  assert.equal(await release(), '1.0', 'f starts from d\'s fallback');
  assert.match(await vm.ok('systemctl is-enabled atomhost-updates.path'), /^enabled/m, 'the image enables the path unit');

  await writeStack(stack('2026.11.4', '2.0', 'kubelet:v2'));
  await vm.ok(`mkdir -p /etc/atomhost/updates.d && rm -f /var/lib/atomhost-drained /var/lib/atomhost-uncordons && cat > /etc/atomhost/updates.d/50-fleet.yaml <<'EOF'
strategy: fleet_lock
interval: 10s
jitter: 2s
fleet_lock: { base_url: "http://${GUEST_HOST}:${GUEST_FLEETLOCK_PORT}", group: workers }
hooks:
  pre_reboot: [{ argv: [/bin/sh, -c, "date > /var/lib/atomhost-drained"], timeout: 1m }]
  post_healthy: [{ argv: [/bin/sh, -c, "echo uncordon >> /var/lib/atomhost-uncordons"], timeout: 1m }]
EOF`);
  const check = await vm.run('atomhost --json updates check', 900_000);
  const r = JSON.parse(check.stdout) as { state: string; reason: string | null; target: { version: string | null } | null };
  assert.equal(r.state, 'waiting', check.stdout);
  assert.equal(r.reason, 'no reboot slot free in fleet lock group workers');
  assert.equal(r.target?.version, '2.0');
  assert.match(await vm.ok('atomhost updates status'), /^Updates: waiting \(2\.0\): no reboot slot free in fleet lock group workers$/m, 'status shows the waiting state');
  assert.match(await vm.ok('ostree admin status'), /\(staged\)/, 'the upgrade is staged');
  assert.equal((await vm.run('test -e /var/lib/atomhost-drained')).exitCode, 1, 'no drain without the slot');
  assert.deepEqual(await holders(), ['other-node']);

  // The other node is back: the agent's own timer takes the slot, drains and reboots the host.
  assert.equal((await post(`${lockUrl}/v1/steady-state`, lockBody('other-node', 'workers'))).status, 200);
  const end = await vm.waitExit(900_000);
  assert.notEqual(end, 'timeout', `the host did not reboot by itself\n${await vm.serialTail()}`);
  const held = await holders();
  assert.equal(held.length, 1, 'this node took the slot before the reboot');
  assert.notEqual(held[0], 'other-node');

  // The boot into the new revision. No command in the guest until etcd shows the slot free.
  await vm.start();
  let now = held;
  for (let i = 0; i < 600 && now.length; i++) {
    await new Promise((res) => setTimeout(res, 1000));
    now = await holders();
  }
  assert.deepEqual(now, [], `the slot was given back after the boot\n${(await vm.run('atomhost updates status; journalctl -b -u atomhostd.service -u atomhost-health.service --no-pager -o cat | tail -30', 120_000)).stdout}`);
  await settled();
  assert.equal(await release(), '2.0', 'the new /usr runs');
  assert.equal(await kubeletServes(), 'kubelet v2', `the new container runs\n${await g.why('kubelet.service')}`);
  const booted = (JSON.parse(await vm.ok('atomhost status --json')) as { status: { deployments: { booted: boolean; version: string | null; revision: { state: string } | null }[] } }).status.deployments.find((d) => d.booted);
  assert.deepEqual([booted?.version, booted?.revision?.state], ['2.0', 'healthy']);
  assert.equal((await vm.run('test -s /var/lib/atomhost-drained')).exitCode, 0, 'the pre-reboot hook ran');
  assert.equal((await vm.ok('cat /var/lib/atomhost-uncordons')).trim(), 'uncordon', 'the post-healthy hook ran once');
  assert.match((await vm.run('atomhost updates status')).stdout, /^Updates: steady/m);
  // The agent's states, by MESSAGE_ID: before the reboot, and in this boot (the agent the path unit started).
  const states = async (boot: string) =>
    (await vm.ok(`journalctl -b ${boot} MESSAGE_ID=${MESSAGE_IDS.updateState} -o json --no-pager`)).trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Record<string, string>).ATOMHOST_UPDATE_STATE);
  const before = await states('-1');
  for (const want of ['checking', 'staged', 'waiting', 'rebooting']) assert.ok(before.includes(want), `${want} before the reboot: ${before.join(' ')}`);
  assert.match(await vm.ok(`journalctl -b -1 MESSAGE_ID=${MESSAGE_IDS.updateReboot} -o cat --no-pager`), /update agent: rebooting into revision [0-9a-f]{12}/);
  const afterBoot = await states('0');
  assert.ok(afterBoot.includes('steady'), `steady after the boot: ${afterBoot.join(' ')}`);
  assert.doesNotMatch(afterBoot.join(' '), /rebooting|error/, 'no second reboot, no error');
  assert.match(await vm.ok(`journalctl -b 0 MESSAGE_ID=${MESSAGE_IDS.updateState} ATOMHOST_UPDATE_STATE=steady -o cat --no-pager`), /^update agent: steady: revision [0-9a-f]{12} \(2\.0\) is healthy; fleet lock released$/m);

  // Leave the host as later runs expect it: the agent paused and the policy gone.
  assert.match(await vm.ok('atomhost updates pause && rm /etc/atomhost/updates.d/50-fleet.yaml'), /paused/);
});
