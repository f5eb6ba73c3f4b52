// Hostile callers and values through atomhostd in a test host (real systemd, system bus,
// journald, runc, Debian's docker-registry): an unprivileged uid (65534 on the real bus)
// sees no container values, probe commands or journal lines; values that would inject
// lines into unit files, templates or kernel arguments are refused; a call with the wrong
// D-Bus types is refused and the daemon stays up; a probe that hangs is killed with its
// process group and the gate answers; an unprivileged StackStatus cannot make the host
// run probes on demand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildAndPush, freePort, type Registry } from '../containers/fixtures.js';
import { prepareDiskHost, type DiskHost } from '../helpers/disk-host.js';

const SYSROOT = '/var/lib/atomhost-test/sysroot';
const SECRET = 'tok-3f9a1c-do-not-show';
let th: TestHost;
let fx: DiskHost;
let reg: Registry;
let port = 0;

const atomhost = (...args: string[]) => th.exec('atomhost', args);
const nobody = (...args: string[]) => th.exec('atomhost', args, { user: '65534' });

before(async () => {
  if (process.getuid?.() !== 0) return;
  fx = await prepareDiskHost('atomhost-security-', { sizeMiB: 3072 });
  reg = fx.reg;
  port = await freePort();
  await buildAndPush(reg.host, 'web:1', { layers: [{ busybox: true, files: { 'www/index.html': 'web\n' } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] });
  await buildAndPush(reg.host, 'idle:1', { layers: [{ busybox: true }], cmd: ['/bin/sleep', '1000000'] });
  th = await fx.boot({ agentEnv: { ATOMHOST_INSECURE_REGISTRIES: reg.host, ATOMHOST_HEALTH_DEADLINE_MS: '15000', ATOMHOST_PROBE_TIMEOUT_MS: '2000' } });
});

after(async () => {
  await fx?.dispose(th, { journalLines: 40 });
});

test('a caller who may not change the host sees no container values, probe commands or failure details', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const r = await atomhost('container', 'install', '--name', 'web', '--set', `TOKEN=${SECRET}`, '--probe-cmd', `/bin/echo ${SECRET}`, `${reg.host}/web:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  // Root sees its own values.
  assert.match((await atomhost('--json', 'container', 'list')).stdout, new RegExp(SECRET));
  for (const args of [['--json', 'status'], ['--json', 'container', 'list'], ['--json', 'revisions'], ['--json', 'stack', 'status']]) {
    const out = await nobody(...args);
    assert.doesNotMatch(`${out.stdout}${out.stderr}`, new RegExp(SECRET), `uid 65534: atomhost ${args.join(' ')} shows the value`);
  }
  // The raw D-Bus surface too: the Status property and the last result.
  for (const call of [
    ['get-property', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'Status'],
    ['call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'GetLastResult'],
    ['call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'ListRevisions'],
  ]) {
    const out = await th.exec('busctl', ['--system', ...call], { user: '65534' });
    assert.equal(out.exitCode, 0, out.stderr);
    assert.doesNotMatch(out.stdout, new RegExp(SECRET), `uid 65534: busctl ${call.join(' ')}`);
  }
  // Files that hold values are root's only.
  const modes = await th.sh(`find ${SYSROOT}/ostree/atomhost/revisions -type f -newer ${SYSROOT}/ostree/repo/config -printf '%m %p\\n'; find ${SYSROOT}/ostree/deploy -path '*containers/web/*' -maxdepth 9 -name config.json -printf '%m %p\\n'; stat -c '%a %n' /etc/systemd/system/web.service`);
  for (const line of modes.stdout.trim().split('\n')) assert.match(line, /^6[04]0 /, `readable by others: ${line}`);
  const read = await th.exec('cat', ['/etc/systemd/system/web.service'], { user: '65534' });
  assert.notEqual(read.exitCode, 0, 'uid 65534 cannot read the unit file');
});

test('values that would add lines to a unit, a template or the kernel command line are refused, naming the field', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const role = await atomhost('container', 'install', '--name', 'web2', '--role', 'network\nExecStartPre=/bin/touch /tmp/pwned', `${reg.host}/web:1`);
  assert.notEqual(role.exitCode, 0);
  assert.match(role.stderr, /role/);
  const host = await atomhost('container', 'install', '--name', 'dbus', `${reg.host}/web:1`);
  assert.notEqual(host.exitCode, 0, 'a container may not take the name of a host unit');
  assert.match(host.stderr, /dbus\.service/);
  const kargs = await atomhost('kargs', '--append', 'quiet\ninit=/bin/sh');
  assert.equal(kargs.exitCode, 2, kargs.stderr);
  assert.match(kargs.stderr, /not a kernel argument/);
  const replace = await atomhost('kargs', '--append', 'console=tty0', '--replace', 'console=tty0 init=/bin/sh');
  assert.equal(replace.exitCode, 2, replace.stderr);
  assert.equal((await th.exec('test', ['-e', '/tmp/pwned'])).exitCode, 1, 'nothing ran');
  const probe = await atomhost('container', 'install', '--name', 'web3', '--probe-http', 'file:///etc/shadow', `${reg.host}/web:1`);
  assert.notEqual(probe.exitCode, 0);
  assert.match(probe.stderr, /http/);
});

test('wrong D-Bus types and huge strings are refused; the daemon stays up', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const before = (await th.exec('systemctl', ['show', '-p', 'MainPID', 'atomhostd.service'])).stdout.trim();
  const calls: string[][] = [
    ['Deploy', 'i', '7'],
    ['ContainerInstall', 's', 'x'],
    ['ContainerInstall', 'sa{ss}a{ss}', 'img', '1', 'probeCommand', 'not json', '0'],
    ['ContainerInstall', 'sa{ss}a{ss}', 'img', '1', 'nonsense', 'x', '0'],
    ['Rebase', 'ss', 'x'.repeat(100_000), ''],
    ['SetPinned', 'ss', 'a', 'b'],
  ];
  for (const [method, sig, ...args] of calls) {
    const r = await th.exec('busctl', ['--system', 'call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', method, sig, ...args]);
    assert.notEqual(r.exitCode, 0, `${method}(${sig}) was accepted`);
    assert.match(r.stderr, /InvalidArgument|takes|larger|probeCommand|unknown option/, `${method}: ${r.stderr}`);
  }
  const status = await atomhost('status');
  assert.equal(status.exitCode, 0, status.stderr);
  assert.equal((await th.exec('systemctl', ['show', '-p', 'MainPID', 'atomhostd.service'])).stdout.trim(), before, 'the same daemon answers');
});

test('a probe that hangs (with a grandchild) is killed with its process group and the change is undone', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  assert.equal((await atomhost('container', 'uninstall', 'web')).exitCode, 0, 'the port is free for the next container');
  const r = await atomhost('container', 'install', '--name', 'hang', '--probe-cmd', '/bin/sh -c "sleep 1000 & sleep 1001"', `${reg.host}/web:1`);
  assert.equal(r.exitCode, 1, r.stderr);
  assert.match(r.stderr, /timed out after 2 s/);
  assert.equal((await th.exec('pgrep', ['-f', 'sleep 100[01]'])).exitCode, 1, 'no probe process is left');
  const list = await atomhost('--json', 'container', 'list');
  assert.doesNotMatch(list.stdout, /"hang"/, 'the unhealthy container was rolled back');
  assert.equal((await atomhost('status')).exitCode, 0, 'the daemon is not wedged');
});

test('fuzz: random methods, signatures and values from an unprivileged and a root caller leave the daemon up and the host unchanged', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  console.log(`# D-Bus fuzz: FUZZ_SEED=${seed}`);
  let s = seed >>> 0;
  const r = () => ((s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x6d2b79f5) >>> 0) / 4294967296);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  // Mutating methods are left out for root: a well-typed random Deploy could really deploy.
  const reads = ['GetStatus', 'ListRevisions', 'ListRevisionPage', 'Diff', 'GetLastResult', 'ContainerList', 'StackStatus', 'RemoteList', 'GetUpdates'];
  const writes = ['Upgrade', 'Deploy', 'Rebase', 'Rollback', 'KernelArgs', 'Cleanup', 'SetPinned', 'ContainerInstall', 'ContainerUpdate', 'RestartRole', 'Cancel', 'RemoteAdd', 'RemoteDelete', 'UpdatesCheck', 'UpdatesPause', 'UpdatesResume'];
  const values: Record<string, () => string[]> = {
    s: () => [pick(['', 'x', '../../etc', 'a\nb', '%n%s', '💥', 'y'.repeat(Math.floor(r() * 70_000))])],
    u: () => [String(Math.floor(r() * 2 ** 32))],
    i: () => [String(Math.floor(r() * 2 ** 31) * (r() < 0.5 ? -1 : 1))],
    b: () => [pick(['true', 'false'])],
    as: () => ['2', pick(['a', 'quiet\ninit=/bin/sh']), pick(['', 'b c'])],
    'a{ss}': () => ['1', pick(['name', 'role', 'probeCommand', 'x']), pick(['["/bin/sh"]', 'network\nX=1', '{'])],
    'a{sv}': () => ['1', 'k', 's', 'v'],
  };
  const before = (await atomhost('--json', 'revisions')).stdout;
  const pid = (await th.exec('systemctl', ['show', '-p', 'MainPID', 'atomhostd.service'])).stdout.trim();
  for (let i = 0; i < 60; i++) {
    const asRoot = r() < 0.5;
    const method = asRoot ? pick(reads) : pick([...reads, ...writes]);
    const types = Array.from({ length: Math.floor(r() * 4) }, () => pick(Object.keys(values)));
    const args = types.flatMap((ty) => values[ty]());
    await th.exec('busctl', ['--system', '--timeout=20', 'call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', method, types.join(''), ...args], asRoot ? {} : { user: '65534' });
  }
  assert.equal((await th.exec('systemctl', ['show', '-p', 'MainPID', 'atomhostd.service'])).stdout.trim(), pid, `the daemon restarted (FUZZ_SEED=${seed})`);
  assert.equal((await atomhost('status')).exitCode, 0);
  assert.equal((await atomhost('--json', 'revisions')).stdout, before, `the host changed (FUZZ_SEED=${seed})`);
});

test('StackStatus from a caller who may not change the host does not run the probes on demand; it says when they were measured', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  const COUNT = '/run/atomhost-probe-runs';
  const r = await atomhost('container', 'install', '--name', 'counted', '--probe-cmd', `/bin/sh -c "echo run >> ${COUNT}"`, `${reg.host}/idle:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  const runs = async () => (await th.exec('cat', [COUNT])).stdout.split('\n').filter(Boolean).length;
  const stackStatus = async (user?: string) => {
    const out = await th.exec('busctl', ['--system', '--json=short', 'call', 'io.atomhost.Agent1', '/io/atomhost/Agent1', 'io.atomhost.Agent1', 'StackStatus'], user ? { user } : {});
    assert.equal(out.exitCode, 0, out.stderr);
    return JSON.parse((JSON.parse(out.stdout) as { data: string[] }).data[0]) as { probesMeasured: string | null; roles: { containers: { name: string; probe: string | null }[] }[] };
  };
  // The gate ran the probe; count from here.
  const base = await runs();
  const quick = [await stackStatus('65534'), await stackStatus('65534')];
  assert.ok((await runs()) - base <= 1, `two unprivileged StackStatus calls ran the probe ${(await runs()) - base} times`);
  for (const s of quick) assert.ok('probesMeasured' in s, 'the reply says when the probes were measured');
  // Root runs the probe now (this also proves the counter counts).
  const before = await runs();
  const t0 = Date.now();
  const root = await stackStatus();
  assert.equal((await runs()) - before, 1, 'a root StackStatus runs the probe once');
  assert.ok(root.probesMeasured && Math.abs(Date.parse(root.probesMeasured) - t0) < 30_000, `measured now: ${root.probesMeasured}`);
  assert.match(root.roles.flatMap((x) => x.containers).find((c) => c.name === 'counted')?.probe ?? '', /^exit 0/);
  // Right after, unprivileged callers get that look, with its time, and run nothing.
  const after = await runs();
  for (let i = 0; i < 3; i++) assert.equal((await stackStatus('65534')).probesMeasured, root.probesMeasured, 'an unprivileged caller gets the last look');
  assert.equal(await runs(), after, 'unprivileged StackStatus calls ran the probe');
  assert.equal((await atomhost('container', 'uninstall', 'counted')).exitCode, 0);
});
