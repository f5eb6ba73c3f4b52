// Health checks against real probes: an HTTP server on 127.0.0.1 and real commands and
// scripts. (Unit checks run against the real systemd of the test host: test/agent.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { runHealthChecks } from '../../core/health-gate.js';
import { scriptChecks } from '../../core/health.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'health-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('HTTP, command and health.d checks pass together', async (t) => {
  const srv = createServer((_q, r) => r.end('ok')).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const dir = await tempDir(t);
  await writeFile(join(dir, '10-ok'), '#!/bin/sh\necho fine\n');
  await chmod(join(dir, '10-ok'), 0o755);
  await writeFile(join(dir, 'README'), 'not executable, not a check');
  try {
    const checks = [
      { name: 'api', kind: 'http' as const, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/healthz` },
      { name: 'true', kind: 'command' as const, command: ['true'] },
      ...(await scriptChecks(dir)),
    ];
    assert.equal(checks.length, 3);
    const r = await runHealthChecks(checks, null, { deadlineMs: 3000 });
    assert.equal(r.ok, true, r.reason ?? '');
  } finally {
    srv.close();
  }
});

test('a failing script fails the gate by its deadline, with its output as the reason', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '20-kubelet'), '#!/bin/sh\necho "kubelet healthz: connection refused" >&2\nexit 3\n');
  await chmod(join(dir, '20-kubelet'), 0o755);
  const t0 = Date.now();
  const r = await runHealthChecks(await scriptChecks(dir), null, { deadlineMs: 1200, intervalMs: 200 });
  assert.equal(r.ok, false);
  assert.ok(Date.now() - t0 < 3000);
  assert.match(r.reason!, /^health\.d\/20-kubelet: exit 3: kubelet healthz: connection refused/);
});

test('an unreachable probe URL fails', async () => {
  const r = await runHealthChecks([{ name: 'dead', kind: 'http', url: 'http://127.0.0.1:9/healthz' }], null, { deadlineMs: 500, intervalMs: 200 });
  assert.equal(r.ok, false);
  assert.match(r.reason!, /^dead: /);
});
