// A stack manifest chooses images and probe commands that run as root: a host never
// follows one fetched over plain http. Refused at `stack follow`, with a clear error, and
// nothing on the host changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';

let f: OsFixture;
before(async () => {
  if (process.getuid?.() === 0) f = await OsFixture.createDeployed();
});
after(async () => {
  await f?.dispose();
});

test('stack follow http://… is refused with the reason; the origin and revisions are unchanged', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  const before = await f.snapshot();
  const r = await f.cli('stack', 'follow', 'http://127.0.0.1:9/stack.yaml');
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr.trim(), /^error: stack source http:\/\/127\.0\.0\.1:9\/stack\.yaml: plain http is refused .*https.*"commit"/);
  assert.deepEqual(await f.snapshot(), before, 'nothing changed');
  const ok = await f.cli('stack', 'follow', 'https://example.invalid/stack.yaml');
  assert.equal(ok.exitCode, 0, `an https source is accepted at follow time: ${ok.stderr}`);
});
