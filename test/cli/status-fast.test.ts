// The plain `atomhost status` runs without commander (cli/status-fast.ts): which argv take
// that way, and that they print, fail and exit exactly as commander's parse of the same
// command does. `--sysroot=PATH` (not a plain spelling) is the commander-parsed twin of
// `--sysroot PATH`, on a real sysroot (tmpfs) with a pending second deployment.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { CLI, OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { parsePlainStatus } from '../../cli/status-fast.js';

test('plain status spellings are parsed as commander parses them', () => {
  assert.deepEqual(parsePlainStatus(['status']), { globals: {}, opts: {} });
  assert.deepEqual(parsePlainStatus(['--sysroot', '/s', '--json', 'status', '-b', '--verbose', '--pending-exit-77']), { globals: { sysroot: '/s', json: true }, opts: { booted: true, verbose: true, pendingExit77: true } });
  // Global options after the command, as commander takes them.
  assert.deepEqual(parsePlainStatus(['status', '-v', '--progress-json', '--sysroot', 'status']), { globals: { sysroot: 'status', progressJson: true }, opts: { verbose: true } });
});

test('anything else is left to commander (help, usage errors, other spellings)', () => {
  for (const args of [
    [], ['--help'], ['status', '--help'], ['status', '-h'], ['status', '-bv'], ['-b', 'status'], ['status', '-b', '-b'], ['status', 'status'], ['status', 'extra'],
    ['stack', 'status'], ['updates', 'status'], ['--sysroot=/s', 'status'], ['--sysroot', '', 'status'], ['--sysroot', '-x', 'status'], ['status', '--sysroot'],
    ['--sysroot', '/a', '--sysroot', '/b', 'status'], ['status', '--'], ['--debug', 'status'], ['status', '--booted=1'], ['--version', 'status'], ['status', '--bogus'],
  ]) {
    assert.equal(parsePlainStatus(args), null, JSON.stringify(args));
  }
});

let f: OsFixture;
before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed({ versions: ['1.0'] });
  await f.publish('1.1');
  const up = await f.cli('upgrade');
  if (up.exitCode !== 0) throw new Error(`upgrade: ${up.stderr}`);
});
after(async () => {
  await f?.dispose();
});

async function run(args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, env: { ATOMHOST_DEBUG: '', DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/atomhost-test-no-bus' }, timeout: 30_000 });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

test('a plain status prints and exits byte for byte as the commander-parsed one', async (t) => {
  if (!requireRoot(t)) return;
  const S = f.sysroot;
  for (const rest of [['status'], ['status', '-v'], ['status', '--booted'], ['--json', 'status'], ['status', '--json', '-b'], ['status', '--pending-exit-77'], ['--json', 'status', '--pending-exit-77']]) {
    const plain = await run(['--sysroot', S, ...rest]);
    const commander = await run([`--sysroot=${S}`, ...rest]);
    assert.deepEqual(plain, commander, rest.join(' '));
    assert.equal(plain.exitCode, rest.includes('--pending-exit-77') ? 77 : 0, `${rest.join(' ')}: ${plain.stderr}`);
    assert.notEqual(plain.stdout, '');
  }
  // Errors: no daemon (no bus), a sysroot that is not one; text and JSON.
  for (const args of [['status'], ['--json', 'status'], ['--sysroot', `${S}/nonexistent`, 'status'], ['--json', '--sysroot', `${S}/nonexistent`, 'status']]) {
    const plain = await run(args);
    const commander = await run(args.map((a, i) => (a === '--sysroot' ? `--sysroot=${args[i + 1]}` : args[i - 1] === '--sysroot' ? '' : a)).filter(Boolean).concat(args.includes('--sysroot') ? [] : ['--']));
    assert.deepEqual(plain, commander, args.join(' '));
    assert.notEqual(plain.exitCode, 0);
    assert.notEqual(plain.stderr, '');
  }
});
