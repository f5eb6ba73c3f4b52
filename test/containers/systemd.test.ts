// System containers under a real systemd (PID 1 of a test host, with a system bus):
// installed units start in role order through org.freedesktop.systemd1, a container that
// fails to start is refused with its journal lines and leaves the revisions as they
// were, updates restart the unit, uninstall stops it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { initSysroot, SYSROOT } from '../helpers/sysroot-host.js';
import { requireRoot, inCI } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildAndPush, freePort, startRegistry, type Registry } from './fixtures.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { makeScratch, type Scratch } from '../../sandbox/scratch.js';
import type { HostStatus } from '../../core/host-api.js';

let th: TestHost;
let scratch: Scratch;
let reg: Registry;
let server: StaticServer;
let env: Record<string, string>;
const ports = { netd: 0, kubelet: 0 };

const cli = (...args: string[]) => th.exec('atomhost', ['--sysroot', SYSROOT, ...args], { env });

before(async () => {
  if (process.getuid?.() !== 0) return;
  scratch = await makeScratch('atomhost-ctr-');
  reg = await startRegistry(join(scratch.dir, 'registry'));
  const repo = join(scratch.dir, 'repo');
  await initArchiveRepo(repo);
  await buildOsTree(join(scratch.dir, 'tree'), { osname: 'testos', version: '1.0' });
  await commitTree(repo, 'testos/stable', join(scratch.dir, 'tree'), '1.0');
  server = await serveDirectory(repo);
  ports.netd = await freePort();
  ports.kubelet = await freePort();
  for (const [name, port] of Object.entries(ports)) {
    await buildAndPush(reg.host, `${name}:1`, { layers: [{ busybox: true, files: { 'www/index.html': `${name} v1\n` } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] });
  }
  await buildAndPush(reg.host, 'crashes:1', { layers: [{ busybox: true }], cmd: ['/bin/sh', '-c', 'echo "crashes: cannot open /etc/crashes.conf" >&2; exit 3'] });
  th = await TestHost.boot();
  env = { ATOMHOST_INSECURE_REGISTRIES: reg.host, ATOMHOST_LIVE: '1' };
  await initSysroot(th, server.url, { env });
});

after(async () => {
  await th?.shutdown();
  await server?.close();
  await reg?.stop();
  await scratch?.dispose();
});

test('installed containers run as systemd units, started in role order', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  // Installed kubelet first: the role, not the order of commands, orders the units.
  let r = await cli('container', 'install', '--role', 'kubelet', `${reg.host}/kubelet:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  r = await cli('container', 'install', '--role', 'network', `${reg.host}/netd:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  for (const [name, port] of Object.entries(ports)) {
    const active = await th.exec('systemctl', ['is-active', `${name}.service`]);
    assert.equal(active.stdout.trim(), 'active', `${name}.service is active`);
    assert.equal(await fetch(`http://127.0.0.1:${port}/index.html`).then((x) => x.text()), `${name} v1\n`);
  }
  const after = await th.exec('systemctl', ['show', '-p', 'After', 'kubelet.service']);
  assert.match(after.stdout, /atomhost-role-network\.target/, 'kubelet is ordered after the network role');
  const list = JSON.parse((await cli('--json', 'container', 'list')).stdout) as { name: string; activeState: string }[];
  assert.deepEqual(list.map((c) => [c.name, c.activeState]), [['netd', 'active'], ['kubelet', 'active']], 'listed in role order with their unit states');
});

test('a container that fails to start is refused with its log; nothing is recorded', async (t) => {
  if (!requireRoot(t)) return;
  const revs = (await th.sh(`ls ${SYSROOT}/ostree/atomhost/revisions | wc -l`)).stdout;
  const r = await cli('container', 'install', `${reg.host}/crashes:1`);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /crashes failed to start .*the previous state was restored/s);
  assert.match(r.stderr, /cannot open \/etc\/crashes\.conf/, 'the journal lines say why');
  assert.equal((await th.sh(`ls ${SYSROOT}/ostree/atomhost/revisions | wc -l`)).stdout, revs, 'the revision list is unchanged');
  assert.notEqual((await th.exec('systemctl', ['is-active', 'crashes.service'])).stdout.trim(), 'active');
  assert.equal((await th.exec('test', ['-e', '/etc/systemd/system/crashes.service'])).exitCode, 1, 'its unit file is gone');
  assert.equal((await th.exec('systemctl', ['is-active', 'netd.service'])).stdout.trim(), 'active', 'the others keep running');
});

test('update restarts the unit on the new image; uninstall stops it and removes the unit', async (t) => {
  if (!requireRoot(t)) return;
  await buildAndPush(reg.host, 'netd:1', { layers: [{ busybox: true, files: { 'www/index.html': 'netd v2\n' } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${ports.netd}`, '-h', '/www'] });
  let r = await cli('container', 'update', 'netd');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(await fetch(`http://127.0.0.1:${ports.netd}/index.html`).then((x) => x.text()), 'netd v2\n');
  r = await cli('container', 'rollback', 'netd');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(await fetch(`http://127.0.0.1:${ports.netd}/index.html`).then((x) => x.text()), 'netd v1\n');
  r = await cli('container', 'uninstall', 'kubelet');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal((await th.exec('systemctl', ['is-active', 'kubelet.service'])).stdout.trim(), 'inactive');
  assert.equal((await th.exec('test', ['-e', '/etc/systemd/system/kubelet.service'])).exitCode, 1);
  const s = JSON.parse((await cli('--json', 'status')).stdout) as HostStatus;
  assert.deepEqual(Object.keys(s.status.deployments[0].revision!.containers), ['netd']);
  void inCI;
  void execa;
});
