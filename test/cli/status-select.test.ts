// The pure parts of `status --booted/-v/--pending-exit-77` on Host objects written out here:
// a booted deployment (which a sysroot on tmpfs cannot have: only the VM boots one) and a
// revision with containers and units (the sysroot tests have none). The real paths through
// --sysroot and atomhostd are in test/os/status-flags.test.ts and test/cli/status-daemon.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootedOnly, hasPendingDeployment } from '../../cli/status-select.js';
import { renderStatus } from '../../cli/render.js';
import type { DeploymentStatus, HostStatus } from '../../core/host-api.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function dep(index: number, over: Partial<DeploymentStatus>): DeploymentStatus {
  return {
    index, osname: 'testos', refspec: 'origin:testos/stable', checksum: String(index).repeat(64), version: `${index}.0`, timestamp: null, kargs: [],
    deploySerial: 0, default: index === 0, rollback: false, booted: false, staged: false, pinned: false,
    signature: { state: 'not-verified', remote: 'origin', signers: [] },
    revision: {
      id: `${index}`.repeat(64), created: '2026-12-04T10:00:00.000Z', state: 'deployed', parent: null,
      os: { osname: 'testos', remote: 'origin', refspec: 'origin:testos/stable', checksum: String(index).repeat(64), version: `${index}.0`, kargs: [] },
      containers: { etcd: { name: 'etcd', image: '127.0.0.1:5000/etcd:3.6', digest: DIGEST, values: {}, checkout: '/x', role: 'runtime' } },
      units: { 'atomhost-etcd.service': { sha256: 'cd'.repeat(32), path: '/etc/systemd/system/atomhost-etcd.service' } },
      hostUnits: { 'containerd.service': { role: 'engine' } },
    },
    ...over,
  };
}

function host(deployments: DeploymentStatus[]): HostStatus {
  return {
    apiVersion: 'atomhost.io/v1alpha1', kind: 'Host', metadata: { name: 'n', sysroot: '/' },
    spec: { osname: 'testos', refspec: 'origin:testos/stable', revision: deployments[0]?.revision?.id ?? null },
    status: { booted: null, staged: null, rollback: null, deployments },
  } as HostStatus;
}

test('a staged deployment over the booted one is pending; the booted one first is not; one alone is not', () => {
  assert.equal(hasPendingDeployment(host([dep(0, { staged: true }), dep(1, { booted: true, default: false })])), true);
  assert.equal(hasPendingDeployment(host([dep(0, { booted: true }), dep(1, { rollback: true })])), false);
  assert.equal(hasPendingDeployment(host([dep(0, {})])), false);
  assert.equal(hasPendingDeployment(host([])), false);
});

test('--booted keeps only the booted deployment, and the rest of the object as it was', () => {
  const all = host([dep(0, { staged: true }), dep(1, { booted: true, default: false })]);
  const b = bootedOnly(all);
  assert.deepEqual(b.status.deployments.map((d) => d.index), [1]);
  assert.deepEqual(b.spec, all.spec);
  assert.equal(all.status.deployments.length, 2, 'the original is not changed');
  assert.match(renderStatus(b, { bootedOnly: true }), /● 1: testos 1\.0 {2}\[booted\]/);
});

test('-v shows full container digests, unit files and host units; without it the digest is short', () => {
  const s = host([dep(0, { booted: true })]);
  const plain = renderStatus(s);
  const verbose = renderStatus(s, { verbose: true });
  assert.match(plain, new RegExp(`Container: etcd 127\\.0\\.0\\.1:5000/etcd:3\\.6 ${DIGEST.slice(0, 19)} \\(runtime\\)$`, 'm'));
  assert.ok(!plain.includes(DIGEST));
  assert.ok(verbose.includes(`Container: etcd 127.0.0.1:5000/etcd:3.6 ${DIGEST} (runtime)`), verbose);
  assert.ok(verbose.includes(`Unit: atomhost-etcd.service sha256:${'cd'.repeat(32)} /etc/systemd/system/atomhost-etcd.service`), verbose);
  assert.match(verbose, /Host unit: containerd\.service \(engine\)/);
  assert.doesNotMatch(plain, /Unit:|Host unit:/);
});
