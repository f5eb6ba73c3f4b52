// `atomhost status --booted`, `-v` and `--pending-exit-77` through atomhostd: a test host
// (real systemd as PID 1, the system bus, the daemon by D-Bus activation) on a sysroot of
// its own on tmpfs. That sysroot is not the host's root, so nothing is booted (as with
// --sysroot): --booted shows no deployment and a second deployment is pending.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot } from '../helpers/capability.js';
import { bootSysrootHost, SYSROOT, type SysrootHost } from '../helpers/sysroot-host.js';
import type { TestHost } from '../testhost/testhost.js';
import type { HostStatus } from '../../core/host-api.js';

let host: SysrootHost;
let th: TestHost;
const publish = (version: string, files?: Record<string, string>) => host.publish(version, files);

const atomhost = (...args: string[]) => th.exec('atomhost', args);

before(async () => {
  if (process.getuid?.() !== 0) return;
  host = await bootSysrootHost('atomhost-clihabits-', { files: (version) => ({ 'usr/share/testos/VERSION': `${version}\n` }) });
  th = host.th;
});

after(async () => {
  await host?.dispose();
});

test('through atomhostd: one deployment is not pending; --booted shows none; -v shows the full revision', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const pending = await atomhost('status', '--pending-exit-77');
  assert.equal(pending.exitCode, 0, pending.stderr);
  assert.match(pending.stdout, /State: idle/, 'the answer came from the daemon');
  assert.match(pending.stdout, /0: testos 1\.0 {2}\[default\]/);
  const booted = await atomhost('status', '--booted');
  assert.equal(booted.exitCode, 0, booted.stderr);
  assert.match(booted.stdout, new RegExp(`\\(none booted: ${SYSROOT} is not the running system\\)`));
  const bootedJson = JSON.parse((await atomhost('--json', 'status', '--booted')).stdout) as HostStatus;
  assert.deepEqual(bootedJson.status.deployments, []);
  assert.equal(bootedJson.metadata.sysroot, SYSROOT);
  const s = JSON.parse((await atomhost('--json', 'status')).stdout) as HostStatus;
  const v = await atomhost('status', '-v');
  assert.equal(v.exitCode, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`Revision: ${s.status.deployments[0].revision!.id} \\(deployed\\)`));
  assert.match(v.stdout, new RegExp(`Deployment: testos/deploy/${s.status.deployments[0].checksum}\\.0`));
  // Any user may read the status; -v adds nothing the daemon hides from them.
  const nobody = await th.exec('atomhost', ['status', '-v'], { user: '65534' });
  assert.equal(nobody.exitCode, 0, nobody.stderr);
  assert.match(nobody.stdout, new RegExp(`Revision: ${s.status.deployments[0].revision!.id}`));
});

test('through atomhostd: after an upgrade --pending-exit-77 exits 77; after cleanup --rollback 0 again', async (t) => {
  if (!requireRoot(t)) return;
  await publish('2.0');
  const up = await atomhost('upgrade');
  assert.equal(up.exitCode, 0, up.stderr);
  const r = await atomhost('status', '--pending-exit-77');
  assert.equal(r.exitCode, 77, r.stderr);
  assert.match(r.stdout, /0: testos 2\.0 {2}\[default\]/);
  const j = await atomhost('--json', 'status', '--pending-exit-77');
  assert.equal(j.exitCode, 77);
  assert.equal((JSON.parse(j.stdout) as HostStatus).status.deployments.length, 2);
  const nobody = await th.exec('atomhost', ['status', '--pending-exit-77'], { user: '65534' });
  assert.equal(nobody.exitCode, 77, nobody.stderr);
  const clean = await atomhost('cleanup', '--rollback');
  assert.equal(clean.exitCode, 0, clean.stderr);
  assert.equal((await atomhost('status', '--pending-exit-77')).exitCode, 0);
});

test('through atomhostd: usage errors exit 2 before the bus is asked', async (t) => {
  if (!requireRoot(t)) return;
  const r = await atomhost('status', '--pending');
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /unknown option '--pending'/);
  assert.match(r.stderr, /Try 'atomhost status --help' for more information\./);
});
