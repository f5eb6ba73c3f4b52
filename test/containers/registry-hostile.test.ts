// A hostile registry (test/helpers/hostile-registry.ts: a malicious server on 127.0.0.1,
// over http and over https with a self-signed CA) against `atomhost container install`:
// lying digests, endless and truncated bodies, redirect loops and downgrades, a token
// realm in clear, unverifiable index digests. Each is refused with a typed error that
// names the image and what was wrong, a non-zero exit, and the host exactly as it was
// (deployments, boot entries, revisions, the repo's refs, atomhost's files in the sysroot
// and in /var/lib/atomhost).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot, requireCommand } from '../helpers/capability.js';
import { HostileRegistry, blob, bytesOf, json, makeImage, manifestFor, selfSignedCert, serveImage, storeState, OCI_INDEX, OCI_MANIFEST, type Handler, type Image } from '../helpers/hostile-registry.js';

let f: OsFixture;
let reg: HostileRegistry; // plain http, listed as insecure
let tls: HostileRegistry | undefined; // https with a self-signed CA the CLI trusts
let cert: Awaited<ReturnType<typeof selfSignedCert>> | undefined;
let img: Image;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  reg = await HostileRegistry.start();
  img = await makeImage();
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  process.env.REGISTRY_AUTH_FILE = join(f.scratch.dir, 'no-auth.json');
  const hasOpenssl = await import('execa').then(({ execa }) => execa('sh', ['-c', 'command -v openssl'], { reject: false })).then((r) => r.exitCode === 0);
  if (hasOpenssl) {
    cert = await selfSignedCert();
    tls = await HostileRegistry.start({ tls: cert });
    // Read by the CLI child at its start: the hostile https registry is "trusted" TLS-wise,
    // so what is refused is refused for what it says, not for its certificate.
    process.env.NODE_EXTRA_CA_CERTS = cert.caFile;
  }
});
after(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
  delete process.env.REGISTRY_AUTH_FILE;
  await reg?.stop();
  await tls?.stop();
  await cert?.dispose();
  await f?.dispose();
});

interface Refusal {
  code: string;
  message: string;
}

/** Installs `image`; asserts a non-zero exit, a typed JSON error and an unchanged host; returns the error. */
async function refused(image: string, what: string): Promise<Refusal> {
  const before = { host: await f.snapshot(), store: await storeState(f.sysroot) };
  const r = await f.cli('--json', 'container', 'install', '--name', 'h', image);
  assert.notEqual(r.exitCode, 0, `${what}: installed\n${r.stdout}`);
  const last = r.stderr.trim().split('\n').pop() ?? '';
  let err: Refusal;
  try {
    err = (JSON.parse(last) as { error: Refusal }).error;
  } catch {
    assert.fail(`${what}: no typed error on stderr:\n${r.stderr}`);
  }
  assert.match(err.code, /^AH_ERR_/, what);
  assert.doesNotMatch(err.message, /TypeError|SyntaxError|undefined|\[object/, `${what}: ${err.message}`);
  assert.deepEqual(await f.snapshot(), before.host, `${what}: deployments, boot entries and revisions unchanged`);
  assert.deepEqual(await storeState(f.sysroot), before.store, `${what}: nothing stored`);
  return err;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('hostile registry: a manifest whose bytes do not match the pinned digest is refused; nothing stored', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  reg.reset();
  serveImage(reg, 'pinned', 'v1', img);
  // The reference pins the honest manifest; the registry answers with another one.
  const other = blob(Buffer.from(JSON.stringify({ ...img.manifestDoc, annotations: { evil: 'yes' } })));
  reg.on(`/v2/pinned/manifests/${img.manifest.digest}`, bytesOf(other.bytes, OCI_MANIFEST));
  const err = await refused(`${reg.host}/pinned@${img.manifest.digest}`, 'pinned manifest');
  assert.equal(err.code, 'AH_ERR_DIGEST_MISMATCH');
  assert.match(err.message, new RegExp(`^manifest of ${esc(reg.host)}/pinned@${img.manifest.digest}: digest mismatch \\(expected ${img.manifest.digest}, got ${other.digest}\\)`));
  assert.ok(!reg.seen.some((s) => s.path.includes('/blobs/')), 'no blob was fetched for a manifest that lied');
});

test('hostile registry: a layer or a config whose bytes do not match its digest is refused; nothing stored', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  for (const part of ['layer', 'config'] as const) {
    reg.reset();
    serveImage(reg, 'liar', part, img);
    const honest = img[part];
    // Same length, one byte different: only the digest can tell.
    const forged = Buffer.from(honest.bytes);
    forged[forged.length >> 1] ^= 0x20;
    reg.on(`/v2/liar/blobs/${honest.digest}`, bytesOf(forged));
    const err = await refused(`${reg.host}/liar:${part}`, part);
    assert.equal(err.code, 'AH_ERR_DIGEST_MISMATCH', err.message);
    assert.match(err.message, new RegExp(`^(layer|blob) ${honest.digest} of ${esc(reg.host)}/liar: digest mismatch \\(expected ${honest.digest}, got sha256:`), part);
  }
});

test('hostile registry: a config that is larger than its descriptor, not a JSON object, or of the wrong types is refused by name', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  const cases: [string, Buffer | 'endless', RegExp][] = [
    ['endless', 'endless', /^blob sha256:[0-9a-f]{64} of .*\/cfg is larger than \d+ bytes \(Content-Length 67108864\): refused/],
    ['array', Buffer.from('[1,2]'), /^the config of .*\/cfg:array is not a JSON object/],
    ['types', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: 'rm -rf /', Env: [1], Labels: { a: {} } } })), /^the config of .*\/cfg:types is malformed: config\.Cmd must be a list of strings; config\.Env must be a list of strings; config\.Labels must map names to strings/],
  ];
  for (const [tag, bytes, expect] of cases) {
    reg.reset();
    // Under its own honest digest: the digest check passes, what is inside is what is judged.
    const config = blob(bytes === 'endless' ? Buffer.from('{}') : bytes);
    const manifest = blob(Buffer.from(JSON.stringify(manifestFor(config, [img.layer]))));
    reg.on(`/v2/cfg/manifests/${tag}`, bytesOf(manifest.bytes, OCI_MANIFEST));
    reg.on(`/v2/cfg/blobs/${img.layer.digest}`, bytesOf(img.layer.bytes));
    reg.on(`/v2/cfg/blobs/${config.digest}`, bytes === 'endless' ? endless(64 * 1024 * 1024, { bytes: 0, closed: false }, 64 * 1024 * 1024) : bytesOf(config.bytes));
    const err = await refused(`${reg.host}/cfg:${tag}`, `config ${tag}`);
    assert.equal(err.code, 'AH_ERR_REGISTRY', err.message);
    assert.match(err.message, expect, tag);
  }
});

/** Streams `total` bytes of a JSON-looking body in chunks, without Content-Length (or with a given one); counts what was written. */
function endless(total: number, sent: { bytes: number; closed: boolean }, contentLength?: number) {
  return (_req: unknown, res: ServerResponse) =>
    new Promise<void>((resolve) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, ...(contentLength ? { 'content-length': contentLength } : {}) });
      res.on('close', () => {
        sent.closed = true;
        resolve();
      });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      chunk[0] = 0x7b; // '{'
      const pump = () => {
        if (res.destroyed || sent.bytes >= total) return res.end();
        sent.bytes += chunk.length;
        // Slowly: one chunk every few milliseconds, as a trickling server would.
        if (res.write(chunk)) setTimeout(pump, 2);
        else res.once('drain', pump);
      };
      pump();
    });
}

test('hostile registry: a manifest over the cap, streamed slowly without Content-Length, is refused early with its size', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  reg.reset();
  const sent = { bytes: 0, closed: false };
  const total = 64 * 1024 * 1024;
  reg.on('/v2/huge/manifests/v1', endless(total, sent));
  const err = await refused(`${reg.host}/huge:v1`, 'endless manifest');
  assert.equal(err.code, 'AH_ERR_REGISTRY');
  assert.match(err.message, new RegExp(`^the manifest of ${esc(reg.host)}/huge:v1 is larger than 4194304 bytes: refused`));
  assert.ok(sent.closed, 'the connection was dropped');
  assert.ok(sent.bytes < 16 * 1024 * 1024, `refused early: the server got to send ${sent.bytes} of ${total} bytes`);

  // A Content-Length over the cap is refused before the body is read.
  reg.reset();
  const sent2 = { bytes: 0, closed: false };
  reg.on('/v2/huge/manifests/v2', endless(total, sent2, total));
  const err2 = await refused(`${reg.host}/huge:v2`, 'declared huge manifest');
  assert.match(err2.message, new RegExp(`^the manifest of ${esc(reg.host)}/huge:v2 is larger than 4194304 bytes \\(Content-Length ${total}\\): refused`));
  assert.ok(sent2.bytes < 16 * 1024 * 1024, `refused before reading: the server sent ${sent2.bytes} bytes`);
});

test('hostile registry: a manifest that breaks off, or trickles under the cap without end, is a clear error in bounded time', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  reg.reset();
  reg.on('/v2/slow/manifests/cut', (_req, res) => {
    res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': img.manifest.bytes.length * 2 });
    res.write(img.manifest.bytes, () => res.destroy());
  });
  const cut = await refused(`${reg.host}/slow:cut`, 'manifest that breaks off');
  assert.equal(cut.code, 'AH_ERR_REGISTRY');
  assert.match(cut.message, new RegExp(`^the manifest of ${esc(reg.host)}/slow:cut: the transfer broke off after ${img.manifest.bytes.length} bytes`));

  // One byte every 100 ms, forever: the document deadline (shortened for the test) ends it.
  const sent = { closed: false };
  reg.on('/v2/slow/manifests/trickle', (_req, res) => {
    res.writeHead(200, { 'content-type': OCI_MANIFEST });
    const timer = setInterval(() => res.write(' '), 100);
    res.on('close', () => {
      clearInterval(timer);
      sent.closed = true;
    });
  });
  process.env.ATOMHOST_REGISTRY_DOCUMENT_TIMEOUT_MS = '1500';
  try {
    const started = Date.now();
    const slow = await refused(`${reg.host}/slow:trickle`, 'trickling manifest');
    assert.equal(slow.code, 'AH_ERR_REGISTRY');
    assert.match(slow.message, new RegExp(`^the manifest of ${esc(reg.host)}/slow:trickle did not arrive within 1\\.5 s: refused`));
    assert.ok(Date.now() - started < 60_000, 'ended by the deadline');
    assert.ok(sent.closed, 'the connection was dropped');
  } finally {
    delete process.env.ATOMHOST_REGISTRY_DOCUMENT_TIMEOUT_MS;
  }
});

test('hostile registry: a truncated layer (Content-Length says more than is sent) is a clear, bounded error', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  for (const ranges of ['honours Range', 'ignores Range'] as const) {
    reg.reset();
    serveImage(reg, 'cut', 'v1', img);
    const layer = img.layer.bytes;
    const half = layer.length >> 1;
    reg.on(`/v2/cut/blobs/${img.layer.digest}`, (req, res) => {
      // Every answer breaks off half way; a later try may ask for the rest with Range.
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m && ranges === 'honours Range' ? Number(m[1]) : 0;
      const body = layer.subarray(start);
      res.writeHead(start ? 206 : 200, { 'content-length': body.length, ...(start ? { 'content-range': `bytes ${start}-${layer.length - 1}/${layer.length}` } : {}) });
      res.write(body.subarray(0, Math.max(1, half - start)), () => res.destroy());
    });
    const err = await refused(`${reg.host}/cut:v1`, `truncated layer (${ranges})`);
    assert.equal(err.code, 'AH_ERR_REGISTRY', err.message);
    assert.match(err.message, new RegExp(`^layer ${img.layer.digest} of ${esc(reg.host)}/cut: the transfer broke off after \\d+ of ${layer.length} bytes, 3 tries`), ranges);
    const tries = reg.seen.filter((s) => s.path.includes(img.layer.digest.slice(7)));
    assert.equal(tries.length, 3, `${ranges}: bounded tries (${tries.length})`);
    if (ranges === 'honours Range') assert.ok(tries.slice(1).every((s) => /^bytes=\d+-$/.test(s.range ?? '')), 'later tries resume with Range');
  }
});

test('hostile registry: a redirect loop is bounded, with a clear error', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  reg.reset();
  reg.on('/v2/loop/manifests/v1', (_req, res) => {
    res.writeHead(307, { location: '/v2/loop/manifests/v1' });
    res.end();
  });
  const err = await refused(`${reg.host}/loop:v1`, 'redirect loop');
  assert.equal(err.code, 'AH_ERR_REGISTRY');
  assert.match(err.message, new RegExp(`^registry ${esc(reg.host)}: more than 5 redirects for /v2/loop/manifests/v1`));
  assert.equal(reg.seen.length, 6, 'the first request and 5 redirects, no more');
});

test('hostile registry: an index entry whose digest is md5 (or not a digest at all) is refused before it is fetched', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  for (const [tag, digest, expect] of [
    ['md5', `md5:${'0'.repeat(32)}`, /digest algorithm "md5" cannot be verified \(sha256, sha512\)/],
    // A tag where a digest belongs would be fetched and trusted without any check.
    ['tag', 'v1', /digest algorithm "v1" cannot be verified/],
  ] as const) {
    reg.reset();
    serveImage(reg, 'idx', 'v1', img);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest, size: img.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }] };
    reg.on(`/v2/idx/manifests/${tag}`, (_req, res) => json(res, 200, index, OCI_INDEX));
    const err = await refused(`${reg.host}/idx:${tag}`, `index entry ${digest}`);
    assert.equal(err.code, 'AH_ERR_REGISTRY');
    assert.match(err.message, new RegExp(`^the index of ${esc(reg.host)}/idx:${tag}: entry for linux/amd64: `));
    assert.match(err.message, expect);
    assert.deepEqual(reg.seen.map((s) => s.path).filter((p) => p !== '/v2/'), [`/v2/idx/manifests/${tag}`], 'nothing was fetched by the entry');
  }
});

test('hostile registry: a redirect to another host never carries the Authorization header', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  reg.reset();
  const storage = await HostileRegistry.start();
  try {
    const auth = join(f.scratch.dir, 'auth.json');
    const basic = `Basic ${Buffer.from('ops:s3cret').toString('base64')}`;
    await writeFile(auth, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('ops:s3cret').toString('base64') } } }));
    process.env.REGISTRY_AUTH_FILE = auth;
    const img2 = await makeImage({ hello: 'redirected\n' });
    // Every answer of the registry needs the credentials; its blobs live on "storage" (another host).
    const guard = (inner: Handler): Handler => (req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' });
        return void res.end();
      }
      return inner(req, res);
    };
    reg.on('/v2/private/manifests/v1', guard(bytesOf(img2.manifest.bytes, OCI_MANIFEST)));
    for (const [d, bytes] of [[img2.config.digest, img2.config.bytes], [img2.layer.digest, img2.layer.bytes]] as const) {
      reg.on(`/v2/private/blobs/${d}`, guard((_req, res) => {
        res.writeHead(307, { location: `${storage.url}/store/${d}` });
        res.end();
      }));
      storage.on(`/store/${d}`, bytesOf(bytes));
    }
    const r = await f.cli('container', 'install', '--name', 'priv', `${reg.host}/private:v1`);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(reg.seen.some((s) => s.authorization === basic), 'the registry itself got the credentials');
    assert.equal(storage.seen.length, 2, 'config and layer came from the other host');
    assert.deepEqual(storage.seen.map((s) => s.authorization), [undefined, undefined], 'no Authorization header went to the other host');
    assert.equal((await f.cli('container', 'uninstall', 'priv')).exitCode, 0);
  } finally {
    process.env.REGISTRY_AUTH_FILE = join(f.scratch.dir, 'no-auth.json');
    await storage.stop();
  }
});

test('hostile registry over https: a redirect to http is refused and the http host is never asked', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot') || !(await requireCommand(t, 'openssl'))) return;
  tls!.reset();
  reg.reset();
  tls!.on('/v2/down/manifests/v1', (_req, res) => {
    res.writeHead(302, { location: `${reg.url}/v2/down/manifests/v1` });
    res.end();
  });
  serveImage(reg, 'down', 'v1', img);
  const err = await refused(`${tls!.host}/down:v1`, 'https→http redirect');
  assert.equal(err.code, 'AH_ERR_REGISTRY');
  assert.match(err.message, new RegExp(`^registry ${esc(tls!.host)} redirected /v2/down/manifests/v1 from https://${esc(tls!.host)} to http://${esc(reg.host)}: refused \\(a redirect may not leave https\\)`));
  assert.ok(tls!.seen.some((s) => s.path === '/v2/down/manifests/v1'), 'the https registry was asked (TLS worked)');
  assert.deepEqual(reg.seen, [], 'the http host was never contacted');
});

test('hostile registry over https: a Bearer token realm on http is refused; no credentials travel in clear', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot') || !(await requireCommand(t, 'openssl'))) return;
  tls!.reset();
  reg.reset();
  const auth = join(f.scratch.dir, 'tls-auth.json');
  await writeFile(auth, JSON.stringify({ auths: { [tls!.host]: { auth: Buffer.from('ops:s3cret').toString('base64') } } }));
  process.env.REGISTRY_AUTH_FILE = auth;
  try {
    tls!.on('/v2/tok/manifests/v1', (_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.url}/token",service="hostile",scope="repository:tok:pull"` });
      res.end();
    });
    reg.on('/token', (_req, res) => json(res, 200, { token: 'stolen' }));
    const err = await refused(`${tls!.host}/tok:v1`, 'http token realm');
    assert.equal(err.code, 'AH_ERR_REGISTRY');
    assert.match(err.message, new RegExp(`^registry ${esc(tls!.host)} sent the token realm http://${esc(reg.host)} for /v2/tok/manifests/v1: refused \\(the realm of an https registry must be https\\)`));
    assert.deepEqual(reg.seen, [], 'the realm in clear was never asked (no credentials sent to it)');
  } finally {
    process.env.REGISTRY_AUTH_FILE = join(f.scratch.dir, 'no-auth.json');
  }
});
