// The FleetLock server against an independent conformance checker
// (test/fleet/conformance/fleetlock_conformance.py: written from Zincati's protocol spec, no
// atomhost code): every case passes on a 3-member etcd, twice (fresh ids each run), over HTTPS
// with a bearer token, and again after the etcd leader is SIGKILLed. The checker can fail: against two small fake servers that
// break the protocol it exits 1 and names the cases they break.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { requireCommand } from '../helpers/capability.js';
import { etcdOrSkip, holdersInEtcd, startServer } from './helpers.js';
import { freePort } from '../../sandbox/registry.js';

const CHECKER = fileURLToPath(new URL('../../../test/fleet/conformance/fleetlock_conformance.py', import.meta.url));

interface Report {
  passed: number;
  failed: string[];
  cases: { name: string; pass: boolean; reason: string }[];
}

async function check(url: string, ...args: string[]): Promise<{ exitCode: number; report: Report; text: string }> {
  const r = await execa('python3', [CHECKER, url, '--json', ...args], { reject: false, timeout: 60_000 });
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`checker printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
  const text = report.cases.map((c) => `${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.reason}`).join('\n');
  return { exitCode: r.exitCode ?? -1, report, text };
}

/** The index of the member that says it is the raft leader (etcd's v3 JSON gateway). */
async function leaderIndex(urls: string[]): Promise<number> {
  for (const [i, u] of urls.entries()) {
    const res = await fetch(`${u}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(3000) }).catch(() => undefined);
    if (!res?.ok) continue;
    const s = (await res.json()) as { header: { member_id: string }; leader: string };
    if (s.header.member_id === s.leader) return i;
  }
  throw new Error(`no member of ${urls.join(',')} says it is the leader`);
}

test('atomhost fleetlock server passes the FleetLock conformance checker before and after losing the etcd leader', async (t) => {
  if (!(await requireCommand(t, 'python3')) || !(await requireCommand(t, 'openssl'))) return;
  const etcd = await etcdOrSkip(t, 3);
  if (!etcd) return;
  const E = etcd.clientUrls;
  const s = await startServer(E, { slots: 2, lockTtlSeconds: 60 });
  try {
    for (const args of [['--slots', '2'], ['--slots', '2'], ['--slots', '2', '--group', 'workers']]) {
      const r = await check(s.url, ...args);
      assert.equal(r.exitCode, 0, `${args.join(' ')}:\n${r.text}`);
      assert.equal(r.report.passed, r.report.cases.length);
      assert.equal(r.report.cases.length, 15, r.text);
    }
    // The same over HTTPS with a bearer token (atomhost's additions; the checker's --cacert and --token-file).
    const dir = await mkdtemp(join(tmpdir(), 'fleetlock-conformance-'));
    try {
      await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir });
      const token = 'conformance-token-0123456789';
      await writeFile(join(dir, 'token'), `${token}\n`);
      const secure = await startServer(E, { slots: 2, token, tls: { cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) } });
      try {
        assert.match(secure.url, /^https:/);
        const r = await check(secure.url, '--slots', '2', '--group', 'secure', '--cacert', join(dir, 'cert.pem'), '--token-file', join(dir, 'token'));
        assert.equal(r.exitCode, 0, `https + token:\n${r.text}`);
      } finally {
        await secure.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const leader = await leaderIndex(E);
    await etcd.kill(leader);
    const rest = E.filter((_, i) => i !== leader);
    const r = await check(s.url, '--slots', '2');
    assert.equal(r.exitCode, 0, `after killing etcd member ${leader} (the leader):\n${r.text}`);
    await leaderIndex(rest); // the two left elected a new leader
    // The checker says it released everything; etcd agrees.
    for (const g of ['default', 'default-other', 'workers', 'workers-other', 'secure', 'secure-other']) assert.deepEqual(await holdersInEtcd(rest, g), [], g);
  } catch (err) {
    (err as Error).message += `\nserver log:\n${s.lines.slice(-20).join('\n')}\netcd logs:\n${etcd.logs()}`;
    throw err;
  } finally {
    await s.close();
    await etcd.stop();
  }
});

/** A fake FleetLock server breaking the protocol in one of two ways (2 slots per group otherwise). */
async function fakeServer(kind: 'grant-all' | 'release-by-anyone'): Promise<Server & { url: string }> {
  const held = new Map<string, Set<string>>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const refuse = (status: number, k: string) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: k, value: `fake server refuses: ${k}` }));
      };
      if (kind === 'grant-all') return res.writeHead(200).end(); // ignores header, body and slots
      let p: { id?: unknown; group?: unknown } | undefined;
      try {
        p = (JSON.parse(body) as { client_params?: typeof p }).client_params;
      } catch {
        return refuse(400, 'bad_json');
      }
      const { id, group = 'default' } = p ?? {};
      if (req.headers['fleet-lock-protocol'] !== 'true') return refuse(400, 'bad_header');
      if (typeof id !== 'string' || id === '' || typeof group !== 'string' || !/^[a-zA-Z0-9.-]+$/.test(group)) return refuse(400, 'bad_identity');
      const set = held.get(group) ?? new Set<string>();
      held.set(group, set);
      if (req.url === '/v1/pre-reboot') {
        if (!set.has(id) && set.size >= 2) return refuse(409, 'full');
        set.add(id);
      } else if (set.size > 0) {
        set.delete(set.has(id) ? id : [...set][0]!); // the bug: anyone's release frees a slot
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(server, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

test('the checker fails fake non-conforming servers and names the cases they break', async (t) => {
  if (!(await requireCommand(t, 'python3'))) return;
  const grantAll = await fakeServer('grant-all');
  const releaseAny = await fakeServer('release-by-anyone');
  try {
    // Grants everything, header or not: every case fails (or is not run) but the clean-up.
    const a = await check(grantAll.url, '--slots', '2');
    assert.equal(a.exitCode, 1, a.text);
    assert.deepEqual(a.report.failed, a.report.cases.map((c) => c.name).filter((n) => n !== 'release-all'), a.text);
    assert.equal(a.report.cases.length, 15);
    assert.match(a.text, /FAIL header-missing-refused: no fleet-lock-protocol header: pre-reboot answered 200/);
    assert.match(a.text, /FAIL pre-reboot-grants-up-to-slots: pre-reboot id=conf-\w+-x\d+ group="default" granted: all 2 slots were held/);
    assert.match(a.text, /FAIL group-missing-or-empty-is-default-or-refused: pre-reboot id=conf-\w+-d\d+ group=\(none\) granted: a request without group got a slot/);
    assert.match(a.text, /FAIL holder-relock-granted: not run: needs case pre-reboot-grants-up-to-slots/);

    // A real semaphore except that a release by anyone frees a slot: the refusals and the slot
    // count pass; exactly the three release cases fail, each with its reason.
    const b = await check(releaseAny.url, '--slots', '2');
    assert.equal(b.exitCode, 1, b.text);
    assert.deepEqual(b.report.failed, ['id-case-sensitive', 'non-holder-release-harmless', 'holder-release-frees-slot'], b.text);
    assert.match(b.text, /FAIL id-case-sensitive: .*CONF-\w+-H\d+ releasing freed conf-\w+-h\d+'s slot/);
    assert.match(b.text, /FAIL non-holder-release-harmless: .*a non-holder's steady-state freed someone else's slot/);
    assert.match(b.text, /FAIL holder-release-frees-slot: .*releasing a second time freed another slot/);

    // Nothing listening: every case fails (or is not run), saying no answer came.
    const dead = await check(`http://127.0.0.1:${await freePort()}`);
    assert.equal(dead.exitCode, 1);
    assert.equal(dead.report.passed, 0, dead.text);
    assert.ok(dead.report.cases.every((c) => /no answer: .*Connection refused|not run: needs/.test(c.reason)), dead.text);

    // The plain-text form: one line per case and the failures listed last.
    const plain = await execa('python3', [CHECKER, releaseAny.url, '--slots', '2'], { reject: false });
    assert.equal(plain.exitCode, 1);
    assert.match(plain.stdout, /^PASS header-missing-refused: ok$/m);
    assert.match(plain.stdout, /^FAILED: .*non-holder-release-harmless/m);
  } finally {
    grantAll.close();
    releaseAny.close();
  }
});

test('the checker refuses bad usage with exit 2', async (t) => {
  if (!(await requireCommand(t, 'python3'))) return;
  const cases: [string[], RegExp][] = [
    [[], /the following arguments are required: base_url/],
    [['--slots', '0'], /--slots must be >= 1/],
    [['--slots', 'x'], /--slots: invalid int value: 'x'/],
    [['--token-file', '/nonexistent/token'], /--token-file \/nonexistent\/token: No such file or directory/],
    [['--cacert', '/nonexistent/ca.pem'], /--cacert \/nonexistent\/ca\.pem: No such file or directory/],
  ];
  for (const [args, want] of cases) {
    const r = await execa('python3', [CHECKER, ...(args.length ? ['http://127.0.0.1:1', ...args] : [])], { reject: false });
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: fleetlock_conformance\.py/);
    assert.match(r.stderr, want);
    assert.equal(r.stdout, '', 'no case ran');
  }
});
