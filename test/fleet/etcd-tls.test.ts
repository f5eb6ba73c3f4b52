// The lock server and `fleetlock status` talking to a real etcd over TLS, with client
// certificates (--client-cert-auth) and without, certificates made by openssl: granted and
// released with the right CA and client certificate; a CA that does not vouch for the member,
// or no / a foreign client certificate, gives an error naming --etcd-cacert or --etcd-cert
// and never a grant (503 etcd_unavailable); bad flags exit 2 naming the flag and the file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireCommand } from '../helpers/capability.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { lockBody, post, serveProcess, startServer, stopServeProcess } from './helpers.js';
import { parseEtcdFlags, parseServeFlags } from '../../fleet/config.js';
import { EtcdClient, EtcdTlsError, EtcdUnavailableError, prefixEnd, type EtcdTls } from '../../fleet/etcd.js';
import { KEY_ROOT } from '../../fleet/semaphore.js';
import { startEtcd, type EtcdCluster } from '../../sandbox/etcd.js';
import { freePort } from '../../sandbox/registry.js';

const CLI = 'dist/cli/main.js';
const PRE = '/v1/pre-reboot';
const STEADY = '/v1/steady-state';

async function holders(urls: string[], tls: EtcdTls, group = 'default'): Promise<string[]> {
  const prefix = `${KEY_ROOT}${group}/holders/`;
  const c = new EtcdClient(urls, { tls });
  try {
    return (await c.range(prefix, prefixEnd(prefix))).kvs.map((k) => k.key.slice(prefix.length)).sort();
  } finally {
    await c.close();
  }
}

/** openssl and etcd present (or skipped with the reason), the PKI made, etcd started with TLS. */
async function tlsEtcd(t: test.TestContext, clientCertAuth: boolean, serverOnly = false): Promise<{ pki: Pki; etcd: EtcdCluster } | undefined> {
  if (!(await requireCommand(t, 'openssl')) || !(await requireCommand(t, 'etcd'))) return undefined;
  const pki = await makePki();
  const [cert, key] = serverOnly ? [pki.serverOnlyCert, pki.serverOnlyKey] : [pki.serverCert, pki.serverKey];
  try {
    return { pki, etcd: await startEtcd(1, { tls: { ca: pki.caCert, cert, key, clientCertAuth, clientCert: pki.clientCert, clientKey: pki.clientKey } }) };
  } catch (err) {
    await pki.remove();
    throw err;
  }
}

// What a user must never see instead of the reason.
const GENERIC = /fetch failed|other side closed/;

test('fleetlock to etcd with --client-cert-auth (mTLS)', async (t) => {
  const setup = await tlsEtcd(t, true);
  if (!setup) return;
  const { pki, etcd } = setup;
  const E = etcd.clientUrls;
  assert.match(E[0]!, /^https:\/\/127\.0\.0\.1:\d+$/);
  const good = parseEtcdFlags({ etcd: E[0]!, etcdCacert: pki.caCert, etcdCert: pki.clientCert, etcdKey: pki.clientKey }).tls!;
  const goodFlags = ['--etcd', E[0]!, '--etcd-cacert', pki.caCert, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey];
  try {
    await t.test('the right CA and a client certificate: a lock is granted, refused when full, and released', async () => {
      const s = await startServer(E, { slots: 1, etcd: new EtcdClient(E, { tls: good, attemptTimeoutMs: 1500 }) });
      try {
        assert.equal((await post(s.url + PRE, lockBody('node-a'))).status, 200);
        assert.deepEqual(await holders(E, good), ['node-a']);
        const full = await post(s.url + PRE, lockBody('node-b'));
        assert.equal(full.status, 409, full.body);
        assert.equal(full.json?.kind, 'failed_lock');
        assert.equal((await post(s.url + STEADY, lockBody('node-a'))).status, 200);
        assert.deepEqual(await holders(E, good), []);
      } finally {
        await s.close();
      }
    });

    await t.test('`atomhost fleetlock serve` and `status` with --etcd-cacert/--etcd-cert/--etcd-key', async () => {
      const p = await serveProcess(['--slots', '1', ...goodFlags], /^fleetlock: etcd answered/);
      try {
        assert.ok(p.out.some((l) => l === 'fleetlock: etcd answered over TLS with a client certificate'), p.out.join('\n'));
        assert.equal((await post(p.url + PRE, lockBody('node-c', 'workers'))).status, 200);
        const text = await execa(process.execPath, [CLI, 'fleetlock', 'status', ...goodFlags]);
        assert.match(text.stdout, /^group workers: 1\/1 slots held$/m);
        assert.match(text.stdout, /^ {2}node-c {2}held \d+s {2}lease left \d+m\d+s$/m);
        const json = JSON.parse((await execa(process.execPath, [CLI, '--json', 'fleetlock', 'status', ...goodFlags])).stdout) as { groups: { group: string; holders: { id: string }[] }[] };
        assert.deepEqual(json.groups.find((g) => g.group === 'workers')?.holders.map((h) => h.id), ['node-c']);
        assert.equal((await post(p.url + STEADY, lockBody('node-c', 'workers'))).status, 200);
        assert.deepEqual(await holders(E, good, 'workers'), []);
      } finally {
        await stopServeProcess(p);
      }
    });

    await t.test('a CA that does not vouch for the member: an error naming --etcd-cacert, a 503 and never a grant', async () => {
      const wrongCa = { ...good, ca: await readFile(pki.otherCaCert) };
      const s = await startServer(E, { slots: 5, etcd: new EtcdClient(E, { tls: wrongCa, attemptTimeoutMs: 1500 }) });
      try {
        const r = await post(s.url + PRE, lockBody('node-d'));
        assert.equal(r.status, 503, r.body);
        assert.equal(r.json?.kind, 'etcd_unavailable');
        assert.match(r.json!.value!, /TLS certificate is not signed by the CA of --etcd-cacert \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
        assert.doesNotMatch(r.json!.value!, GENERIC);
        assert.equal((await post(s.url + STEADY, lockBody('node-d'))).status, 503);
      } finally {
        await s.close();
      }
      // No --etcd-cacert: the system's CAs do not know this one either.
      const { ca: _, ...noCa } = good;
      await assert.rejects(new EtcdClient(E, { tls: noCa }).range(KEY_ROOT), (e: Error) => e instanceof EtcdTlsError && /not signed by a CA this system trusts: give the etcd CA with --etcd-cacert/.test(e.message));
      assert.deepEqual(await holders(E, good), []);
      // The CLI says the same and exits 1 (etcd, not the flags, is what failed).
      const st = await execa(process.execPath, [CLI, 'fleetlock', 'status', '--etcd', E[0]!, '--etcd-cacert', pki.otherCaCert, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey], { reject: false, timeout: 15_000 });
      assert.equal(st.exitCode, 1, st.stderr);
      assert.match(st.stderr, /no etcd member completed the TLS handshake .*not signed by the CA of --etcd-cacert/);
      // `serve` says it in its log at start and keeps serving 503s.
      const p = await serveProcess(['--slots', '1', '--etcd', E[0]!, '--etcd-cacert', pki.otherCaCert, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey], /^fleetlock: etcd (answered|is not usable)/);
      try {
        assert.ok(p.out.some((l) => /^fleetlock: etcd is not usable yet .*--etcd-cacert/.test(l)), p.out.join('\n'));
        assert.equal((await post(p.url + PRE, lockBody('node-e'))).status, 503);
      } finally {
        await stopServeProcess(p);
      }
      assert.deepEqual(await holders(E, good), []);
    });

    await t.test('no client certificate, or one of another CA: an error naming --etcd-cert, a 503 and never a grant', async () => {
      const { cert: _c, key: _k, ...caOnly } = good;
      const intruder = { ca: good.ca, cert: await readFile(pki.otherClientCert), key: await readFile(pki.otherClientKey) };
      for (const [tls, want] of [
        [caOnly, /it requires a client certificate: give --etcd-cert and --etcd-key \(ERR_SSL_/],
        [intruder, /it refused the client certificate of --etcd-cert \(not signed by a CA it trusts, or not valid now\) \(ERR_SSL_/],
      ] as const) {
        const s = await startServer(E, { slots: 5, etcd: new EtcdClient(E, { tls, attemptTimeoutMs: 1500 }) });
        try {
          // Twice: a second request on a new connection says the same.
          for (let i = 0; i < 2; i++) {
            const r = await post(s.url + PRE, lockBody('node-f'));
            assert.equal(r.status, 503, r.body);
            assert.equal(r.json?.kind, 'etcd_unavailable');
            assert.match(r.json!.value!, want);
            assert.doesNotMatch(r.json!.value!, GENERIC);
          }
        } finally {
          await s.close();
        }
      }
      const st = await execa(process.execPath, [CLI, 'fleetlock', 'status', '--etcd', E[0]!, '--etcd-cacert', pki.caCert], { reject: false, timeout: 15_000 });
      assert.equal(st.exitCode, 1, st.stderr);
      assert.match(st.stderr, /requires a client certificate: give --etcd-cert and --etcd-key/);
      assert.deepEqual(await holders(E, good), []);
    });

    await t.test('plain http:// to a member that serves TLS: the error says so', async () => {
      const c = new EtcdClient([E[0]!.replace('https:', 'http:')]);
      try {
        await assert.rejects(c.range(KEY_ROOT), (e: Error) => e instanceof EtcdUnavailableError && !(e instanceof EtcdTlsError) && /does this member serve TLS\? then use https:\/\/ and --etcd-cacert/.test(e.message));
      } finally {
        await c.close();
      }
    });
  } finally {
    await etcd.stop();
    await pki.remove();
  }
});

test('fleetlock to etcd over TLS without client certificates: --etcd-cacert alone', async (t) => {
  const setup = await tlsEtcd(t, false);
  if (!setup) return;
  const { pki, etcd } = setup;
  const E = etcd.clientUrls;
  const flags = ['--etcd', E[0]!, '--etcd-cacert', pki.caCert];
  try {
    const p = await serveProcess(['--slots', '1', ...flags], /^fleetlock: etcd (answered|is not usable)/);
    try {
      assert.ok(p.out.includes('fleetlock: etcd answered over TLS'), p.out.join('\n'));
      assert.equal((await post(p.url + PRE, lockBody('node-g'))).status, 200);
      assert.match((await execa(process.execPath, [CLI, 'fleetlock', 'status', ...flags])).stdout, /^ {2}node-g {2}held/m);
      assert.equal((await post(p.url + STEADY, lockBody('node-g'))).status, 200);
    } finally {
      await stopServeProcess(p);
    }
    // https:// to a port that speaks plain HTTP (here a bare node:http server).
    const plain = createServer((_req, res) => res.end('plain'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const c = new EtcdClient([`https://127.0.0.1:${(plain.address() as AddressInfo).port}`], { tls: { ca: await readFile(pki.caCert) } });
    try {
      await assert.rejects(c.range(KEY_ROOT), (e: Error) => e instanceof EtcdTlsError && /does not speak TLS on this port: an http:\/\/ member\?/.test(e.message));
    } finally {
      await c.close();
      plain.close();
    }
  } finally {
    await etcd.stop();
    await pki.remove();
  }
});

test("etcd's own pitfall: --client-cert-auth with a member certificate for serverAuth only", async (t) => {
  const setup = await tlsEtcd(t, true, true);
  if (!setup) return;
  const { pki, etcd } = setup;
  const c = new EtcdClient(etcd.clientUrls, { tls: { ca: await readFile(pki.caCert), cert: await readFile(pki.clientCert), key: await readFile(pki.clientKey) } });
  try {
    // The handshake succeeds; etcd's gateway then fails inside the member and answers 503.
    await assert.rejects(c.range(KEY_ROOT), (e: Error) => e instanceof EtcdUnavailableError && /(connection closed|connection error: .*transport: .*) \(with --client-cert-auth, the member certificate needs extendedKeyUsage clientAuth as well as serverAuth\)/.test(e.message));
  } finally {
    await c.close();
    await etcd.stop();
    await pki.remove();
  }
});

test('--etcd-cacert/--etcd-cert/--etcd-key: bad flags are refused naming the flag and the file, exit 2', async (t) => {
  if (!(await requireCommand(t, 'openssl'))) return;
  const pki = await makePki();
  try {
    const notPem = join(pki.dir, 'not.pem');
    await writeFile(notPem, 'hello\n');
    const https = 'https://127.0.0.1:1';
    const cases: [Parameters<typeof parseEtcdFlags>[0], RegExp][] = [
      [{ etcd: 'http://127.0.0.1:1,https://127.0.0.1:2' }, /--etcd "http:\/\/127\.0\.0\.1:1,https:\/\/127\.0\.0\.1:2": mixes http:\/\/ and https:\/\/ members/],
      [{ etcd: 'ftp://127.0.0.1:1' }, /--etcd "ftp:\/\/127\.0\.0\.1:1": expected http:\/\/HOST:PORT or https:\/\/HOST:PORT/],
      [{ etcd: 'https://' }, /--etcd "https:\/\/": expected/],
      [{ etcd: 'http://127.0.0.1:1', etcdCacert: pki.caCert }, /--etcd-cacert needs https:\/\/ --etcd URLs/],
      [{ etcd: 'http://127.0.0.1:1', etcdCert: pki.clientCert, etcdKey: pki.clientKey }, /--etcd-cert needs https:\/\/ --etcd URLs/],
      [{ etcd: https, etcdCert: pki.clientCert }, /--etcd-key is missing: --etcd-cert and --etcd-key go together/],
      [{ etcd: https, etcdKey: pki.clientKey }, /--etcd-cert is missing: --etcd-cert and --etcd-key go together/],
      [{ etcd: https, etcdCacert: join(pki.dir, 'nope-ca.crt') }, /--etcd-cacert .*nope-ca\.crt: cannot read it \(ENOENT\)/],
      [{ etcd: https, etcdCacert: notPem }, /--etcd-cacert .*not\.pem: not a PEM file/],
      [{ etcd: https, etcdCacert: pki.clientKey }, /--etcd-cacert .*node-1\.key: not a usable PEM CA certificate/],
      [{ etcd: https, etcdCert: join(pki.dir, 'nope.crt'), etcdKey: pki.clientKey }, /--etcd-cert .*nope\.crt: cannot read it \(ENOENT\)/],
      [{ etcd: https, etcdCert: notPem, etcdKey: pki.clientKey }, /--etcd-cert .*not\.pem: not a PEM file/],
      [{ etcd: https, etcdCert: pki.clientCert, etcdKey: pki.dir }, /--etcd-key .*: cannot read it \(EISDIR\)/],
      [{ etcd: https, etcdCert: pki.clientCert, etcdKey: pki.serverKey }, /--etcd-key .*server\.key: not the PEM private key of --etcd-cert .*node-1\.crt/],
    ];
    for (const [flags, want] of cases) assert.throws(() => parseEtcdFlags(flags), (e: Error) => want.test(e.message), JSON.stringify(flags));
    // serve parses them the same way (one place) and keeps them apart from its own --tls-*.
    const s = parseServeFlags({ listen: '127.0.0.1:1', slots: '1', etcd: https, etcdCacert: pki.caCert, etcdCert: pki.clientCert, etcdKey: pki.clientKey, tlsCert: pki.serverCert, tlsKey: pki.serverKey });
    assert.deepEqual(s.etcd, [https]);
    assert.ok(s.etcdTls?.ca && s.etcdTls.cert && s.etcdTls.key && s.tls?.cert);
    assert.equal(parseEtcdFlags({ etcd: `${https},https://127.0.0.1:2` }).tls !== undefined, true, 'https:// alone: TLS with the system CAs');
    // The key's contents never appear in an error.
    const key = await readFile(pki.serverKey, 'utf8');
    assert.throws(() => parseEtcdFlags({ etcd: https, etcdCert: pki.clientCert, etcdKey: pki.serverKey }), (e: Error) => !e.message.includes(key.split('\n')[1]!));
    // The CLI: exit 2 with the message, for both commands, before touching etcd.
    const cli: [string[], RegExp][] = [
      [['serve', '--listen', '127.0.0.1:1', '--slots', '1', '--etcd', https, '--etcd-cert', pki.clientCert], /--etcd-key is missing/],
      [['serve', '--listen', '127.0.0.1:1', '--slots', '1', '--etcd', https, '--etcd-cacert', notPem], /--etcd-cacert .*not\.pem: not a PEM file/],
      [['serve', '--listen', '127.0.0.1:1', '--slots', '1', '--etcd', 'http://127.0.0.1:1,https://127.0.0.1:2'], /mixes http:\/\/ and https:\/\//],
      [['status', '--etcd', https, '--etcd-key', pki.clientKey], /--etcd-cert is missing/],
      [['status', '--etcd', https, '--etcd-cacert', join(pki.dir, 'nope-ca.crt')], /--etcd-cacert .*nope-ca\.crt: cannot read it \(ENOENT\)/],
      [['status', '--etcd', 'http://127.0.0.1:1', '--etcd-cacert', pki.caCert], /--etcd-cacert needs https:\/\//],
    ];
    for (const [args, want] of cli) {
      const r = await execa(process.execPath, [CLI, 'fleetlock', ...args], { reject: false, timeout: 10_000 });
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
    }
  } finally {
    await pki.remove();
  }
});
