// Whole-stack upgrade: a host that follows a stack manifest upgrades the OS and its
// system containers as one revision with one deployment; the preview shows both; a
// piece that fails to pull changes nothing; rollback returns the whole stack.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OsFixture, OS } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';
import type { HostStatus, UpdatePreview } from '../../core/host-api.js';

let f: OsFixture;
let reg: Registry;
let manifest = '';
let etcd = '';
let kubelet = '';

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  reg = await startRegistry(join(f.scratch.dir, 'registry'));
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  etcd = await buildAndPush(reg.host, 'etcd:3.5', { layers: [{ busybox: true, files: { 'etc/etcd.conf': 'v3.5' } }], cmd: ['/bin/sleep', '1000'] });
  kubelet = await buildAndPush(reg.host, 'kubelet:1.31', { layers: [{ busybox: true, files: { 'etc/kubelet.conf': 'v1.31' } }], cmd: ['/bin/sleep', '1000'] });
  await f.publish('2.0');
  manifest = join(f.scratch.dir, 'stack.yaml');
});
after(async () => {
  await reg?.stop();
  await f?.dispose();
});

const writeManifest = (version: string, os: string, images: string[]) =>
  writeFile(
    manifest,
    `apiVersion: atomhost.io/v1alpha1\nkind: Stack\nmetadata: { name: node, version: "${version}" }\nos: { version: "${os}", kargs: [quiet] }\ncontainers:\n${images.map((i) => `  - { name: ${i.split('/').pop()!.split(':')[0]}, image: "${i}", role: ${i.includes('etcd') ? 'network' : 'kubelet'} }`).join('\n')}\n`,
  );

test('the preview shows the OS, kernel-argument and container changes as one document', async (t) => {
  if (!requireRoot(t)) return;
  await writeManifest('2026.11.1', '2.0', [`${reg.host}/etcd:3.5`, `${reg.host}/kubelet:1.31`]);
  assert.equal((await f.cli('stack', 'follow', manifest)).exitCode, 0);
  assert.equal((await f.cli('stack', 'show')).stdout.trim(), manifest);
  const before = await f.snapshot();
  const p = await f.cliJson<UpdatePreview>('upgrade', '--preview');
  assert.equal(p.available, true);
  assert.equal(p.to?.version, '2.0');
  assert.deepEqual(p.kargs, { from: [], to: ['quiet'] });
  assert.deepEqual(p.containers.map((c) => [c.name, c.from, c.to]), [['etcd', null, etcd], ['kubelet', null, kubelet]]);
  assert.ok(p.files?.modified.includes('/usr/share/testos/VERSION'));
  assert.deepEqual((await f.snapshot()).deployments, before.deployments, 'a preview deploys nothing');
});

test('upgrade pulls everything first and stages one revision with one deployment', async (t) => {
  if (!requireRoot(t)) return;
  const n = (await f.ostreeDeployments()).length;
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Deployed stack node 2026\.11\.1 \(OS 2\.0, 2 containers\)/);
  assert.equal((await f.ostreeDeployments()).length, Math.min(n + 1, 2));
  const s = await f.cliJson<HostStatus>('status');
  const rev = s.status.deployments[0].revision!;
  assert.equal(rev.os.version, '2.0');
  assert.deepEqual(rev.os.kargs, ['quiet']);
  assert.match((await f.bootMenu())[0].options, /^quiet ostree=/);
  assert.deepEqual(Object.fromEntries(Object.entries(rev.containers).map(([k, c]) => [k, [c.digest, c.role]])), { etcd: [etcd, 'network'], kubelet: [kubelet, 'kubelet'] });
  assert.ok(rev.units['etcd.service'] && rev.units['kubelet.service']);
  assert.equal((await f.cli('upgrade', '--check')).exitCode, 77, 'nothing more to do');
});

test('a stack whose image cannot be pulled changes nothing', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('3.0');
  await writeManifest('2026.11.2', '3.0', [`${reg.host}/etcd:3.5`, `${reg.host}/kubelet:9.99`]);
  const before = await f.snapshot();
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /^error: image .*kubelet:9\.99 was not found/);
  assert.deepEqual(await f.snapshot(), before);
  const bad = await f.cli('upgrade', '--check');
  assert.match(bad.stderr, /kubelet:9\.99/);
});

test('a bad manifest is named with its fields; rollback returns the whole previous stack', async (t) => {
  if (!requireRoot(t)) return;
  await writeFile(manifest, 'kind: Stack\ncontainers:\n  - { image: x }\n');
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /^error: stack manifest .*stack\.yaml: metadata\.version is required; containers\[0\]\.name is required/);
  assert.equal((await f.cli('rollback')).exitCode, 0);
  const s = await f.cliJson<HostStatus>('status');
  assert.equal(s.status.deployments[0].revision!.os.version, '1.0');
  assert.deepEqual(s.status.deployments[0].revision!.containers, {}, 'the containers rolled back with the OS');
});
