// Usage errors of the built CLI, run as a process the way a script runs it: exit code 2
// (README.md "Exit codes"), commander's message naming what is wrong, and a hint naming
// the command's --help; with --json the one-line JSON error. Parsing fails before any
// host is opened, so these need no sysroot and no daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { CLI } from '../helpers/os-fixture.js';

async function atomhost(...args: string[]) {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, env: { ATOMHOST_DEBUG: '' } });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

const cases: { args: string[]; message: RegExp; hint: string }[] = [
  { args: ['frobnicate'], message: /unknown command 'frobnicate'/, hint: 'atomhost' },
  { args: ['status', '--bogus'], message: /unknown option '--bogus'/, hint: 'atomhost status' },
  { args: ['deploy'], message: /missing required argument 'target'/, hint: 'atomhost deploy' },
  { args: ['diff', 'abc123'], message: /missing required argument 'to'/, hint: 'atomhost diff' },
  { args: ['revisions', '--limit'], message: /option '--limit <n>' argument missing/, hint: 'atomhost revisions' },
  { args: ['upgrade', 'now'], message: /too many arguments for 'upgrade'/, hint: 'atomhost upgrade' },
  { args: ['rebase', '--os'], message: /option '--os <name>' argument missing/, hint: 'atomhost rebase' },
  { args: ['container', 'frobnicate'], message: /unknown command 'frobnicate'/, hint: 'atomhost container' },
  { args: ['remote', 'add'], message: /missing required argument/, hint: 'atomhost remote add' },
  { args: ['fleetlock', 'serve', '--etcd', 'http://127.0.0.1:1'], message: /required option '--listen <host:port>' not specified/, hint: 'atomhost fleetlock serve' },
  { args: ['--sysroot'], message: /option '--sysroot <path>' argument missing/, hint: 'atomhost' },
];

for (const c of cases) {
  test(`usage error: atomhost ${c.args.join(' ')} exits 2 with the message and a hint`, async () => {
    const r = await atomhost(...c.args);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, c.message);
    assert.ok(r.stderr.includes(`Try '${c.hint} --help' for more information.`), r.stderr);
    assert.equal(r.stdout, '', 'nothing on stdout');
  });
}

test('a bad option value (checked by the command) exits 2 and names the option', async () => {
  const limit = await atomhost('--sysroot', '/nonexistent-clihabits', 'revisions', '--limit', 'lots');
  assert.equal(limit.exitCode, 2, limit.stderr);
  assert.match(limit.stderr, /--limit must be a whole number ≥ 1, got "lots"/);
  const pin = await atomhost('--sysroot', '/nonexistent-clihabits', 'pin', '-1');
  assert.equal(pin.exitCode, 2, pin.stderr);
  assert.match(pin.stderr, /deployment index must be a number ≥ 0, got "-1"|unknown option '-1'/);
});

test('a group without its verb prints its help and exits 2; --help and --version exit 0', async () => {
  const bare = await atomhost('container');
  assert.equal(bare.exitCode, 2);
  assert.match(bare.stderr, /Usage: atomhost container/);
  const none = await atomhost();
  assert.equal(none.exitCode, 2);
  assert.match(none.stderr, /Usage: atomhost \[options\] \[command\]/);
  const help = await atomhost('status', '--help');
  assert.equal(help.exitCode, 0, help.stderr);
  assert.match(help.stdout, /--booted[\s\S]*--verbose[\s\S]*--pending-exit-77/);
  const version = await atomhost('--version');
  assert.equal(version.exitCode, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+$/);
});

test('with --json a usage error is the one-line JSON error, exit 2', async () => {
  const r = await atomhost('--json', 'status', '--bogus');
  assert.equal(r.exitCode, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  const e = (JSON.parse(lines[0]) as { error: { code: string; message: string; details: { command: string } } }).error;
  assert.equal(e.code, 'AH_ERR_INVALID_ARGUMENT');
  assert.match(e.message, /unknown option '--bogus'/);
  assert.equal(e.details.command, 'atomhost status');
  // An argument after `--` that looks like --json is an argument, not the option.
  const plain = await atomhost('diff', '--', '--json');
  assert.equal(plain.exitCode, 2);
  assert.match(plain.stderr, /^error: missing required argument 'to'/);
});
