// A stack manifest chooses images and probe commands that run as root: a host never
// follows one fetched over plain http. Refused at `stack follow`, with a clear error, and
// nothing on the host changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireCommand, requireRoot } from '../helpers/capability.js';
import { HostileRegistry, selfSignedCert } from '../helpers/hostile-registry.js';

let f: OsFixture;
// An https server (self-signed CA, trusted by the CLI through NODE_EXTRA_CA_CERTS) that
// lies, and a plain http one it tries to send the host to.
let https: HostileRegistry | undefined;
let http: HostileRegistry | undefined;
let cert: Awaited<ReturnType<typeof selfSignedCert>> | undefined;
before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  http = await HostileRegistry.start();
  if ((await import('execa')).execaSync('sh', ['-c', 'command -v openssl'], { reject: false }).exitCode === 0) {
    cert = await selfSignedCert();
    https = await HostileRegistry.start({ tls: cert });
    process.env.NODE_EXTRA_CA_CERTS = cert.caFile;
  }
});
after(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
  await https?.stop();
  await http?.stop();
  await cert?.dispose();
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

/** Follows `url` (accepted: it is https), then returns what `upgrade`, which fetches it, does to the host. */
async function upgradeFrom(url: string) {
  const follow = await f.cli('stack', 'follow', url);
  assert.equal(follow.exitCode, 0, follow.stderr);
  const before = await f.snapshot();
  const r = await f.cli('upgrade');
  return { r, before, after: await f.snapshot() };
}

test('a stack manifest over https that redirects to http is refused; the http host is never asked; nothing changes', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot') || !(await requireCommand(t, 'openssl'))) return;
  https!.reset();
  http!.reset();
  https!.on('/stack.yaml', (_req, res) => {
    res.writeHead(302, { location: `${http!.url}/stack.yaml` });
    res.end();
  });
  http!.on('/stack.yaml', (_req, res) => void res.end('metadata: {version: evil}\n'));
  const url = `${https!.url}/stack.yaml`;
  const { r, before, after } = await upgradeFrom(url);
  assert.notEqual(r.exitCode, 0, r.stdout);
  assert.match(r.stderr, new RegExp(`^error: fetching the stack manifest ${url.replace(/[.]/g, '\\.')}: redirected to http://${http!.host.replace(/[.]/g, '\\.')}, refused \\(a redirect may not leave https\\)`, 'm'));
  assert.ok(https!.seen.some((s) => s.path === '/stack.yaml'), 'the https source was asked (TLS worked)');
  assert.deepEqual(http!.seen, [], 'the http host was never contacted');
  assert.deepEqual(after, before, 'nothing changed');
});

test('a stack manifest larger than 1 MiB is refused while it streams (and at once when Content-Length says so); nothing changes', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot') || !(await requireCommand(t, 'openssl'))) return;
  for (const declared of [false, true]) {
    https!.reset();
    const total = 32 * 1024 * 1024;
    let sent = 0;
    https!.on('/big.yaml', (_req, res: ServerResponse) =>
      new Promise<void>((resolve) => {
        res.writeHead(200, { 'content-type': 'application/yaml', ...(declared ? { 'content-length': total } : {}) });
        res.on('close', () => resolve());
        const chunk = Buffer.from('# '.padEnd(64 * 1024 - 1, 'x') + '\n');
        const pump = () => {
          if (res.destroyed || sent >= total) return res.end();
          sent += chunk.length;
          if (res.write(chunk)) setTimeout(pump, 1);
          else res.once('drain', pump);
        };
        pump();
      }),
    );
    const url = `${https!.url}/big.yaml`;
    const { r, before, after } = await upgradeFrom(url);
    assert.notEqual(r.exitCode, 0, r.stdout);
    assert.match(r.stderr, new RegExp(`^error: the stack manifest ${url.replace(/[.]/g, '\\.')} is larger than 1048576 bytes${declared ? ` \\(Content-Length ${total}\\)` : ''}: refused`, 'm'));
    assert.ok(sent < 8 * 1024 * 1024, `refused early: ${sent} of ${total} bytes were sent`);
    assert.deepEqual(after, before, 'nothing changed');
  }
});
