// The registry signature API extension (X-Registry-Supports-Signatures, GET
// /extensions/v2/NAME/signatures/DIGEST), which docker-registry does not implement: a small
// FAKE extension front on 127.0.0.1 answers /v2/ with the header and serves the signature
// lists the test gives it; everything else it proxies to the real docker-registry. The
// signatures are real: made by skopeo --sign-by (and gpg for a crafted one) with real keys,
// verified by the real CLI installing into a test sysroot.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface FakeFront {
  host: string;
  /** path → the body served for GET /extensions/v2/… (a string is sent as is). */
  lists: Map<string, unknown>;
  seen: string[];
  close(): Promise<void>;
}

/** The fake extension front: the header on /v2/, the signature lists it is given, the rest proxied. */
async function startFakeFront(upstream: string): Promise<FakeFront> {
  const lists = new Map<string, unknown>();
  const seen: string[] = [];
  const [uHost, uPort] = upstream.split(':');
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(`${req.method} ${path}`);
    if (path.startsWith('/extensions/v2/')) {
      const body = lists.get(path);
      if (body === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
    }
    const up = httpRequest({ host: uHost, port: Number(uPort), method: req.method, path, headers: { ...req.headers, host: upstream } }, (ur) => {
      const headers = { ...ur.headers };
      if (path === '/v2/' || path === '/v2') headers['x-registry-supports-signatures'] = '1';
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, lists, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('signedBy through the registry signature extension (fake extension front over a real docker-registry)', () => {
  let f: OsFixture;
  let reg: Registry;
  let front: FakeFront;
  let work: string;
  let gnupg: string;
  let conf: string;
  let lookaside: string;
  let signer = '';
  let other = '';
  let digest = '';
  const saved = { ...process.env };
  let n = 0;

  const gpg = (args: string[], input?: string) => execa('gpg', ['--batch', '--no-tty', '--homedir', gnupg, ...args], { input, env: { GNUPGHOME: gnupg } });
  const newKey = async (uid: string) => {
    await gpg(['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
    return (await gpg(['--with-colons', '--list-keys', uid])).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9];
  };
  /** A real signature of `repo`'s image, made by skopeo --sign-by for the name it is pulled by (through the front). */
  const skopeoSign = async (repo: string, key: string): Promise<Buffer> => {
    const staging = join(work, `staging-${n++}`);
    await mkdir(join(work, 'sign.d'), { recursive: true });
    await writeFile(join(work, 'sign.d', 'sign.yaml'), `default-docker:\n  sigstore-staging: file://${staging}\n`);
    await execa('skopeo', ['--insecure-policy', '--registries.d', join(work, 'sign.d'), 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--remove-signatures', '--sign-by', key, '--sign-identity', `${front.host}/${repo}:1`, `docker://${reg.host}/base/app:1`, `docker://${reg.host}/${repo}:1`], { env: { GNUPGHOME: gnupg } });
    return readFile(join(staging, `${repo}@sha256=${digest.slice(7)}`, 'signature-1'));
  };
  const serve = (repo: string, sigs: Buffer[], extra: object[] = []) => {
    front.lists.set(`/extensions/v2/${repo}/signatures/${digest}`, { signatures: [...extra, ...sigs.map((b, i) => ({ version: 2, type: 'atomic', name: `${digest}@sig${i}`, content: b.toString('base64') }))] });
  };
  const usePolicy = (scope: string, key: string) =>
    writeFile(join(conf, 'policy.json'), JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [scope]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: key }] } } }));
  const stored = async () => (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost'])).stdout;
  const install = (image: string) => f.cli('container', 'install', '--name', `c${n++}`, image);
  const refused = async (image: string, re: RegExp) => {
    const before = await stored();
    const r = await install(image);
    assert.notEqual(r.exitCode, 0, `${image} must be refused`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, new RegExp(`${esc(join(conf, 'policy.json'))}: transports\\.docker\\["${esc(front.host)}"\\]\\[0\\]: signedBy: `), 'the error names the policy file and entry');
    assert.equal(await stored(), before, 'a refused image leaves nothing in the store');
  };

  before(async () => {
    if (process.getuid?.() !== 0) return;
    work = await mkdtemp(join(tmpdir(), 'sigext-'));
    gnupg = join(work, 'gnupg');
    await mkdir(gnupg, { mode: 0o700 });
    conf = join(work, 'containers');
    lookaside = join(work, 'lookaside');
    await mkdir(join(conf, 'registries.d'), { recursive: true });
    await mkdir(lookaside);
    f = await OsFixture.createDeployed();
    reg = await startRegistry(join(work, 'registry'));
    front = await startFakeFront(reg.host);
    process.env.ATOMHOST_CONTAINERS_CONF_DIR = conf;
    await writeFile(join(conf, 'registries.conf'), `[[registry]]\nlocation = "${front.host}"\ninsecure = true\n`);
    // A lookaside is configured too: the extension, which the front announces, must be preferred.
    await writeFile(join(conf, 'registries.d', 'default.yaml'), `default-docker:\n  lookaside: file://${lookaside}\n`);
    signer = await newKey('Atomhost Signer <signer@example.org>');
    other = await newKey('Someone Else <else@example.org>');
    await gpg(['--output', join(work, 'signer.gpg'), '--export', signer]);
    digest = await buildAndPush(reg.host, 'base/app:1', { layers: [{ files: { 'www/index.html': 'signed via the extension\n' } }], cmd: ['/www/index.html'] });
  });
  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    if (gnupg) await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
    await front?.close();
    await reg?.stop();
    await f?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a valid signature served by the extension: the pull is allowed (an entry of another type is skipped)', async (t) => {
    if (!requireRoot(t)) return;
    serve('good/app', [await skopeoSign('good/app', signer)], [{ version: 2, type: 'cosign', name: 'x', content: 'AAAA' }]);
    await usePolicy(front.host, join(work, 'signer.gpg'));
    front.seen.length = 0;
    const r = await install(`${front.host}/good/app:1`);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(await stored(), new RegExp(`atomhost/image/${digest.slice(7)}`));
    assert.ok(front.seen.includes(`GET /extensions/v2/good/app/signatures/${digest}`), `the extension was asked: ${front.seen.join(', ')}`);
  });

  test('a signature by another key is refused, naming the policy entry', async (t) => {
    if (!requireRoot(t)) return;
    serve('otherkey/app', [await skopeoSign('otherkey/app', other)]);
    await usePolicy(front.host, join(work, 'signer.gpg'));
    await refused(`${front.host}/otherkey/app:1`, new RegExp(`no valid signature by keys in ${esc(join(work, 'signer.gpg'))} \\(extension signature 1 \\(sha256:[0-9a-f]+@sig0\\): not signed by a key of the policy\\)`));
  });

  test('a real signature for another digest is refused, naming the policy entry', async (t) => {
    if (!requireRoot(t)) return;
    // The same image (same digest) under another name, unsigned.
    await execa('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/base/app:1`, `docker://${reg.host}/crafted/app:1`]);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const payload = JSON.stringify({ critical: { type: 'atomic container signature', image: { 'docker-manifest-digest': wrong }, identity: { 'docker-reference': `${front.host}/crafted/app:1` } }, optional: {} });
    const sig = (await execa('gpg', ['--batch', '--homedir', gnupg, '--local-user', signer, '--sign'], { input: payload, encoding: 'buffer' })).stdout as unknown as Buffer;
    serve('crafted/app', [Buffer.from(sig)]);
    await usePolicy(front.host, join(work, 'signer.gpg'));
    await refused(`${front.host}/crafted/app:1`, new RegExp(`extension signature 1 \\([^)]*\\): it signs manifest ${wrong}, not ${digest}`));
  });

  test('the extension is preferred over a lookaside that has a good signature', async (t) => {
    if (!requireRoot(t)) return;
    const good = await skopeoSign('preferred/app', signer);
    const dir = join(lookaside, `preferred/app@sha256=${digest.slice(7)}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'signature-1'), good);
    serve('preferred/app', []);
    await usePolicy(front.host, join(work, 'signer.gpg'));
    await refused(`${front.host}/preferred/app:1`, new RegExp(`no signature was found for ${digest} at http://${esc(front.host)}/extensions/v2/preferred/app/signatures/${digest} \\(the registry's signature extension`));
  });

  test('hostile answers: too large, not JSON, content not base64, an error status: refused, nothing stored', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy(front.host, join(work, 'signer.gpg'));
    const path = `/extensions/v2/good/app/signatures/${digest}`;
    const savedList = front.lists.get(path);
    try {
      front.lists.set(path, JSON.stringify({ signatures: [{ version: 2, type: 'atomic', name: 'x', content: 'A'.repeat(5 * 1024 * 1024) }] }));
      await refused(`${front.host}/good/app:1`, /signatures could not be read \(.*signature extension\) is larger than 4194304 bytes/);
      front.lists.set(path, '{"signatures": [');
      await refused(`${front.host}/good/app:1`, /signatures could not be read \(.*signature extension\) is not JSON/);
      front.lists.set(path, { signatures: [{ version: 2, type: 'atomic', name: 'x', content: 'not base64!' }] });
      await refused(`${front.host}/good/app:1`, /signatures\[0\]\.content must be base64/);
      front.lists.delete(path);
      await refused(`${front.host}/good/app:1`, /signature extension\): HTTP 404/);
    } finally {
      front.lists.set(path, savedList);
    }
  });
});
