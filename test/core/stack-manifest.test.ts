import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStackManifest, StackManifestError, roleOrder } from '../../core/stack-manifest.js';

test('a valid manifest parses with defaults', async () => {
  const m = await parseStackManifest(
    `apiVersion: atomhost.io/v1alpha1
kind: Stack
metadata: { name: node, version: 2026.11.1 }
os: { refspec: "origin:os/stable", version: "2.0", kargs: [quiet] }
containers:
  - { name: etcd, image: "127.0.0.1:5000/etcd:3.5", role: network, values: { PORT: 2379 } }
  - { name: kubelet, image: "127.0.0.1:5000/kubelet@sha256:${'a'.repeat(64)}", role: kubelet }
`,
    'stack.yaml',
  );
  assert.equal(m.version, '2026.11.1');
  assert.deepEqual(m.os.kargs, ['quiet']);
  assert.deepEqual(m.containers[0].values, { PORT: '2379' });
  assert.ok(roleOrder(m.containers[0].role) < roleOrder(m.containers[1].role));
});

test('every problem is reported at once with its field path', async () => {
  try {
    await parseStackManifest(
      `kind: Stak
os: { checksum: xyz, kargs: "a b" }
containers:
  - { name: Etcd!, image: x, digest: md5:1, role: db }
  - { image: y }
  - { name: a, image: z, values: { k: { nested: 1 } } }
`,
      '/etc/atomhost/stack.yaml',
    );
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof StackManifestError);
    const p = (e.details as { problems: string[] }).problems;
    for (const want of ['kind must be Stack', 'metadata.version is required', 'os.checksum', 'os.kargs', 'containers[0].name', 'containers[0].digest', 'containers[0].role', 'containers[1].name is required', 'containers[2].values.k']) {
      assert.ok(p.some((x) => x.includes(want)), `${want} in ${p.join(' | ')}`);
    }
    assert.match(e.message, /^stack manifest \/etc\/atomhost\/stack\.yaml: /);
  }
});

test('not YAML at all is named', async () => {
  await assert.rejects(parseStackManifest('a: [', 'x.yaml'), /stack manifest x\.yaml: not YAML/);
});

test('host units the OS ships are named by role; bad ones are refused with their field path', async () => {
  const m = await parseStackManifest(
    `metadata: { version: "1" }
units:
  - { name: containerd.service, role: engine, probe: { command: [ctr, version] } }
  - { name: "getty@tty1.service", role: other }
`,
    's.yaml',
  );
  assert.deepEqual(m.units, [
    { name: 'containerd.service', role: 'engine', probe: { command: ['ctr', 'version'] } },
    { name: 'getty@tty1.service', role: 'other' },
  ]);
  try {
    await parseStackManifest(
      `metadata: { version: "1" }
containers: [{ name: etcd, image: x }]
units:
  - { name: "../../etc/passwd", role: network }
  - { name: "evil.service\\nExecStartPre=/bin/sh", role: network }
  - { name: atomhostd.service, role: other }
  - { name: etcd.service, role: network }
  - { name: containerd.socket, role: engine }
  - { name: ok.service }
  - { name: x.service, role: engine, restart: always }
`,
      's.yaml',
    );
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof StackManifestError);
    const p = (e.details as { problems: string[] }).problems;
    for (const want of ['units[0].name', 'units[1].name', "units[2].name atomhostd.service: atomhost's own units", 'units[3].name etcd.service is listed twice (or is a container', 'units[4].name', 'units[5].role is required', 'units[6].restart is not a field']) {
      assert.ok(p.some((x) => x.includes(want)), `${want} in ${p.join(' | ')}`);
    }
  }
});
