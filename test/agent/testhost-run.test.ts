// `npm run testhost -- CMD`: a test host with a sysroot of its own, where the CLI gets the
// host object from atomhostd over the system bus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { requireRoot } from '../helpers/capability.js';

const RUN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'sandbox', 'testhost', 'run.sh');

test('npm run testhost -- atomhost status --json prints the host object from the daemon', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const r = await execa('bash', [RUN, 'atomhost', 'status', '--json'], { reject: false, timeout: 180_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  const host = JSON.parse(r.stdout);
  assert.equal(host.kind, 'Host');
  assert.equal(host.metadata.sysroot, '/var/lib/atomhost/sysroot', 'the sysroot atomhostd serves in the test host');
  assert.equal(host.status.deployments[0].version, '1.0');
  assert.equal(host.status.deployments[0].revision.state, 'healthy', 'the boot units reconciled it and the health gate kept it');
  assert.equal(host.status.transaction, null, 'the status came from the daemon');
  assert.match(r.stderr, /testhost: exit code 0/);
});
