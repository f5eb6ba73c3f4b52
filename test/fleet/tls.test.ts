// TLS and mTLS on the lock server, with certificates made here by openssl (real TLS, no
// mocks): granted over mTLS, refused at the handshake without a client certificate or with
// one from another CA, the node's side through the update policy's ca_file/cert_file/key_file,
// and bad files refused naming the flag or key and the file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireCommand } from '../helpers/capability.js';
import { makePki } from '../helpers/pki.js';
import { etcdOrSkip, holdersInEtcd, startServer } from './helpers.js';
import { FleetLockClient } from '../../fleet/client.js';
import { FleetLockError } from '../../fleet/protocol.js';
import { parseServeFlags } from '../../fleet/config.js';
import { policyLock } from '../../fleet/policy-lock.js';

const CLI = new URL('../../cli/main.js', import.meta.url).pathname;

const refusedAtHandshake = (e: unknown) => e instanceof FleetLockError && e.kind === 'request_failed' && e.status === undefined;

test('fleetlock serve over TLS and mTLS (certificates from openssl)', async (t) => {
  if (!(await requireCommand(t, 'openssl'))) return;
  const etcd = await etcdOrSkip(t);
  if (!etcd) return;
  const pki = await makePki();
  const E = etcd.clientUrls;
  const ca = await readFile(pki.caCert);
  try {
    await t.test('--client-ca: a node with a certificate of that CA is granted and released over mTLS', async () => {
      const s = await startServer(E, { slots: 1, tls: parseServeFlags({ listen: ':1', etcd: E[0]!, slots: '1', tlsCert: pki.serverCert, tlsKey: pki.serverKey, clientCa: pki.caCert }).tls });
      try {
        assert.match(s.url, /^https:/);
        const node = new FleetLockClient({ baseUrl: s.url, id: 'node-1', ca, cert: await readFile(pki.clientCert), key: await readFile(pki.clientKey) });
        assert.equal(await node.preReboot(), true);
        assert.deepEqual(await holdersInEtcd(E), ['node-1']);
        assert.equal(await node.preReboot(), true, 'asking again over a new request: still held');
        await node.steadyState();
        assert.deepEqual(await holdersInEtcd(E), []);
      } finally {
        await s.close();
      }
    });

    await t.test('--client-ca: no client certificate, or one from another CA, is refused at the handshake and never reaches the lock', async () => {
      const s = await startServer(E, { slots: 5, tls: parseServeFlags({ listen: ':1', etcd: E[0]!, slots: '1', tlsCert: pki.serverCert, tlsKey: pki.serverKey, clientCa: pki.caCert }).tls });
      try {
        const noCert = new FleetLockClient({ baseUrl: s.url, id: 'anonymous', ca });
        await assert.rejects(noCert.preReboot(), refusedAtHandshake);
        const otherCa = new FleetLockClient({ baseUrl: s.url, id: 'intruder', ca, cert: await readFile(pki.otherClientCert), key: await readFile(pki.otherClientKey) });
        await assert.rejects(otherCa.preReboot(), refusedAtHandshake);
        await assert.rejects(otherCa.steadyState(), refusedAtHandshake);
        // Plain HTTP to the TLS port is no way around it either.
        await assert.rejects(new FleetLockClient({ baseUrl: s.url.replace('https:', 'http:'), id: 'plain' }).preReboot(), (e) => e instanceof FleetLockError);
        assert.deepEqual(await holdersInEtcd(E), []);
        assert.ok(!s.lines.some((l) => /pre-reboot|steady-state/.test(l)), `no request got as far as a decision: ${s.lines.join('\n')}`);
        // The server says why, one line per refused handshake.
        assert.match(s.lines.join('\n'), /fleetlock: TLS handshake from 127\.0\.0\.1 refused: .*certificate/i);
      } finally {
        await s.close();
      }
    });

    await t.test('TLS without --client-ca: any client that trusts the server CA is served; one that does not refuses the server', async () => {
      const s = await startServer(E, { slots: 1, tls: parseServeFlags({ listen: ':1', etcd: E[0]!, slots: '1', tlsCert: pki.serverCert, tlsKey: pki.serverKey }).tls });
      try {
        const node = new FleetLockClient({ baseUrl: s.url, id: 'node-2', ca });
        assert.equal(await node.preReboot(), true);
        await node.steadyState();
        // The system's CAs do not know this server's CA: the client refuses the server.
        await assert.rejects(new FleetLockClient({ baseUrl: s.url, id: 'node-3' }).preReboot(), (e: FleetLockError) => refusedAtHandshake(e) && /certificate/i.test(e.message));
        assert.deepEqual(await holdersInEtcd(E), []);
      } finally {
        await s.close();
      }
    });

    await t.test("the update policy's fleet_lock ca_file/cert_file/key_file give the agent's client its certificate", async () => {
      const s = await startServer(E, { slots: 1, tls: parseServeFlags({ listen: ':1', etcd: E[0]!, slots: '1', tlsCert: pki.serverCert, tlsKey: pki.serverKey, clientCa: pki.caCert }).tls });
      const machineId = join(pki.dir, 'machine-id');
      await writeFile(machineId, 'b08dfa6083e7567a1921a715000001fb\n');
      try {
        const lock = await policyLock({ baseUrl: s.url, group: 'default', tokenFile: null, caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey }, machineId);
        assert.equal(await lock.preReboot(), true);
        assert.equal((await holdersInEtcd(E)).length, 1);
        await lock.steadyState();
        const noCert = await policyLock({ baseUrl: s.url, group: 'default', tokenFile: null, caFile: pki.caCert }, machineId);
        await assert.rejects(noCert.preReboot(), refusedAtHandshake);
        await assert.rejects(policyLock({ baseUrl: s.url, group: 'default', tokenFile: null, caFile: pki.caCert, certFile: join(pki.dir, 'missing.crt'), keyFile: pki.clientKey }, machineId), /fleet_lock\.cert_file .*missing\.crt: cannot read it \(ENOENT\)/);
        assert.deepEqual(await holdersInEtcd(E), []);
      } finally {
        await s.close();
      }
    });

    await t.test('bad TLS files and flag combinations are refused naming the flag and the file', async () => {
      const base = { listen: '127.0.0.1:1', etcd: E[0]!, slots: '1' };
      const notPem = join(pki.dir, 'not.pem');
      await writeFile(notPem, 'hello\n');
      assert.throws(() => parseServeFlags({ ...base, tlsCert: join(pki.dir, 'nope.crt'), tlsKey: pki.serverKey }), /--tls-cert .*nope\.crt: cannot read it \(ENOENT\)/);
      assert.throws(() => parseServeFlags({ ...base, tlsCert: pki.serverCert, tlsKey: join(pki.dir, 'nope.key') }), /--tls-key .*nope\.key: cannot read it \(ENOENT\)/);
      assert.throws(() => parseServeFlags({ ...base, tlsCert: pki.serverCert, tlsKey: pki.serverKey, clientCa: join(pki.dir, 'nope-ca.crt') }), /--client-ca .*nope-ca\.crt: cannot read it \(ENOENT\)/);
      assert.throws(() => parseServeFlags({ ...base, tlsCert: notPem, tlsKey: pki.serverKey }), /--tls-cert .*not\.pem: not a PEM file/);
      assert.throws(() => parseServeFlags({ ...base, tlsCert: pki.serverCert, tlsKey: pki.clientKey }), /--tls-key .*node-1\.key: not the PEM private key of --tls-cert/);
      assert.throws(() => parseServeFlags({ ...base, tlsCert: pki.serverCert }), /--tls-key is missing/);
      assert.throws(() => parseServeFlags({ ...base, clientCa: pki.caCert }), /--client-ca needs --tls-cert and --tls-key/);
      // The key's contents never appear in an error.
      const key = await readFile(pki.serverKey, 'utf8');
      try {
        parseServeFlags({ ...base, tlsCert: pki.clientCert, tlsKey: pki.serverKey });
        assert.fail('a key of another certificate was taken');
      } catch (err) {
        assert.ok(!(err as Error).message.includes(key.split('\n')[1]!), 'no key material in the message');
      }
      // The CLI: exit 2 with the same message, before listening.
      const r = await execa(process.execPath, [CLI, 'fleetlock', 'serve', '--listen', '127.0.0.1:1', '--etcd', E[0]!, '--slots', '1', '--tls-cert', join(pki.dir, 'nope.crt'), '--tls-key', pki.serverKey], { reject: false, timeout: 10_000 });
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /--tls-cert .*nope\.crt: cannot read it \(ENOENT\)/);
      // And the node's side refuses a client certificate without its key, and TLS settings on http://.
      assert.throws(() => new FleetLockClient({ baseUrl: 'https://127.0.0.1:1', id: 'x', cert: 'x' }), /cert and key go together/);
      assert.throws(() => new FleetLockClient({ baseUrl: 'http://127.0.0.1:1', id: 'x', ca }), /need an https:\/\/ URL/);
    });
  } finally {
    await pki.remove();
    await etcd.stop();
  }
});
