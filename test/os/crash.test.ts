// Crash consistency: the process is SIGKILLed at every named injection point of
// upgrade, rollback and a container-only revision change; after each kill the sysroot
// has a complete default deployment, every boot entry maps to a complete revision, the
// records are intact, and recovery finishes or undoes the interrupted transaction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { OsFixture, CLI } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { LocalHost } from '../../core/local-host.js';
import { revisionIdFromOrigin } from '../../core/revision.js';

let f: OsFixture;
let version = 1;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
});
after(async () => f?.dispose());

async function checkInvariants(where: string): Promise<void> {
  const host = await LocalHost.open(f.sysroot);
  const deps = host.sysroot.deployments;
  assert.ok(deps.length >= 1, `${where}: a default deployment exists`);
  assert.ok(existsSync(join(deps[0].path, 'usr', 'bin', 'busybox')), `${where}: the default deployment is complete`);
  assert.match(await f.ostreeStatus(), new RegExp(deps[0].checksum), `${where}: ostree agrees`);
  const menu = await f.bootMenu();
  assert.equal(menu.length, deps.length, `${where}: one boot entry per deployment`);
  for (const [i, entry] of menu.entries()) {
    const d = deps[i];
    assert.ok(entry.options.includes(`/${d.bootcsum}/`), `${where}: entry ${i} boots deployment ${i}`);
    const id = revisionIdFromOrigin(d.origin);
    assert.ok(id, `${where}: deployment ${i} names its revision`);
    const rev = await host.revisions.get(id); // verifies the record against its id
    assert.equal(rev.os.checksum, d.checksum, `${where}: revision of entry ${i} matches its commit`);
  }
}

const containerOnlyChange = `
import { LocalHost } from ${JSON.stringify(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'local-host.js'))};
const host = await LocalHost.open(process.argv[1]);
await host.commitRevision('container update', (d) => ({ ...d, containers: { etcd: { name: 'etcd', image: 'registry/etcd:3.5', digest: 'sha256:' + 'e'.repeat(64), values: {}, checkout: '/var/lib/atomhost/containers/etcd/x' } } }));
`;

const scenarios: { point: string; run: () => Promise<{ signal?: string; exitCode?: number }> }[] = [
  ...['tx:begun', 'upgrade:pulled', 'deploy:record-written', 'deploy:deployed'].map((point) => ({
    point,
    run: async () => {
      await f.publish(`${++version}.0`);
      return execa(process.execPath, [CLI, '--sysroot', f.sysroot, 'upgrade'], { reject: false, env: { ATOMHOST_FAULT: point } });
    },
  })),
  ...['rollback:begun', 'rollback:written'].map((point) => ({
    point,
    run: () => execa(process.execPath, [CLI, '--sysroot', f.sysroot, 'rollback'], { reject: false, env: { ATOMHOST_FAULT: point } }),
  })),
  ...['commit:mutated', 'deploy:record-written', 'deploy:deployed'].map((point) => ({
    point: `container-change ${point}`,
    run: () => execa(process.execPath, ['--input-type=module', '-e', containerOnlyChange, f.sysroot], { reject: false, env: { ATOMHOST_FAULT: point } }),
  })),
];

const EARLY = new Set(['upgrade:pulled', 'container-change commit:mutated']);

test('every injection point leaves a bootable, consistent host that recovery completes', async (t) => {
  if (!requireRoot(t)) return;
  let passed = 0;
  for (const s of scenarios) {
    await t.test(s.point, async () => {
      const before = await f.revisionFiles();
      const deploymentsBefore = await f.ostreeDeployments();
      const r = await s.run();
      assert.equal(r.signal, 'SIGKILL', `${s.point}: the process was killed at the point (exit ${r.exitCode})`);
      await checkInvariants(`after kill at ${s.point}`);
      const host = await LocalHost.open(f.sysroot);
      const outcome = await host.recover();
      // Killed before the transaction changed anything (only objects were pulled): there
      // is nothing to recover and the host is exactly as it was.
      if (EARLY.has(s.point)) {
        assert.equal(outcome, null);
        assert.deepEqual(await f.ostreeDeployments(), deploymentsBefore);
        assert.deepEqual(await f.revisionFiles(), before);
      } else assert.ok(outcome, `${s.point}: the interrupted transaction was found`);
      assert.equal(await host.journal.read(), null);
      await checkInvariants(`after recovery at ${s.point}`);
      // No orphan: every record is an old one or is named by a deployment.
      const named = new Set(host.sysroot.deployments.map((d) => `${revisionIdFromOrigin(d.origin)}.yaml`));
      for (const file of Object.keys(await f.revisionFiles())) assert.ok(file in before || named.has(file), `${s.point}: ${file} is orphaned`);
      // And the host takes the next change normally.
      const next = await f.cli('kargs', '--append', `crash=${passed}`);
      assert.equal(next.exitCode, 0, next.stderr);
      passed++;
    });
  }
  console.log(`# crash consistency: ${scenarios.length} injection runs, ${passed} passed`);
  assert.equal(passed, scenarios.length);
});

test('a finished rollback whose journal a power loss brought back (faked: the journal written back) keeps a later verdict', async (t) => {
  if (!requireRoot(t)) return;
  const host = await LocalHost.open(f.sysroot);
  const from = revisionIdFromOrigin(host.sysroot.deployments[0].origin)!;
  const fromState = (await host.revisions.get(from)).state;
  const r = await f.cli('rollback');
  assert.equal(r.exitCode, 0, r.stderr);
  const to = revisionIdFromOrigin((await host.sysroot.reload())[0].origin)!;
  assert.equal((await host.revisions.get(from)).state, 'rolled-back');
  // A later verdict on `from`, then the journal's removal lost: recovery must not undo the verdict.
  await host.revisions.setState(from, 'failed', 'health checks failed');
  await writeFile(host.journal.file, JSON.stringify({ kind: 'rollback', from, to, fromState }));
  assert.equal(await host.recover(), 'the interrupted rollback had completed');
  assert.equal((await host.revisions.get(from)).state, 'failed');
  assert.equal(await host.journal.read(), null);
  await host.close();
});
