// The CLI on a machine where no system bus answers (no socket): every verb that asks
// atomhostd says so at once, with the --sysroot way out, and exits with the error's code —
// not Node's silent exit 13 of a call that waits forever on a dead connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { CLI } from '../helpers/os-fixture.js';

const env = { ATOMHOST_DEBUG: '', DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/atomhost-test-no-bus' };

for (const args of [['status'], ['upgrade'], ['updates', 'status'], ['container', 'list'], ['cancel']]) {
  test(`atomhost ${args.join(' ')} with no system bus: one clear error, exit 1`, async () => {
    const r = await execa(process.execPath, [CLI, ...args], { reject: false, env, timeout: 20_000 });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: no system bus \(connect ENOENT \/nonexistent\/atomhost-test-no-bus\); give --sysroot PATH to work on a sysroot directly$/);
  });
}

test('atomhost --json status with no system bus: the JSON error line', async () => {
  const r = await execa(process.execPath, [CLI, '--json', 'status'], { reject: false, env, timeout: 20_000 });
  assert.equal(r.exitCode, 1);
  assert.equal(JSON.parse(r.stderr).error.code, 'AH_ERR_DAEMON');
});
