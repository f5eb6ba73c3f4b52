// containers-certs.d(5) against a real docker-registry serving HTTPS (and, second, requiring a
// client certificate), certificates made with openssl, the real CLI installing into a test
// sysroot. Untrusted or refused handshakes must name the certs.d file that fixes them and
// leave nothing changed; a half-configured directory is an error naming the file.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertsDirError, registryTls } from '../../containers/certs-d.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { makeRegistryPki, type RegistryPki } from '../helpers/registry-pki.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('certs.d directories: read as containers/image reads them', () => {
  let pki: RegistryPki;
  let root: string;
  before(async () => {
    pki = await makeRegistryPki();
    root = await mkdtemp(join(tmpdir(), 'certsd-unit-'));
  });
  after(async () => {
    await pki?.dispose();
    await rm(root, { recursive: true, force: true });
  });

  test('the first root that has the host wins; *.crt are CAs, NAME.cert + NAME.key the client certificate', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    await mkdir(join(b, 'reg.example:5000'), { recursive: true });
    await copyFile(pki.ca, join(b, 'reg.example:5000', 'ca.crt'));
    let t = registryTls('reg.example:5000', [a, b]);
    assert.equal(t.dir, join(b, 'reg.example:5000'));
    assert.equal(t.ca.length, 1);
    assert.equal(t.client, null);
    assert.equal(t.suggestedDir, join(a, 'reg.example:5000'));
    await mkdir(join(a, 'reg.example:5000'), { recursive: true });
    await copyFile(pki.clientCert, join(a, 'reg.example:5000', 'me.cert'));
    await copyFile(pki.clientKey, join(a, 'reg.example:5000', 'me.key'));
    t = registryTls('reg.example:5000', [a, b]);
    assert.equal(t.dir, join(a, 'reg.example:5000'), 'the containers root is preferred over the docker one');
    assert.equal(t.ca.length, 0);
    assert.equal(t.client?.certFile, join(a, 'reg.example:5000', 'me.cert'));
    assert.equal(registryTls('other.example', [a, b]).dir, null);
    // Docker Hub's API host reads the directory named for docker.io.
    await mkdir(join(a, 'docker.io'));
    assert.equal(registryTls('registry-1.docker.io', [a, b]).dir, join(a, 'docker.io'));
  });

  test('hostile and half-configured directories are errors naming the file', async () => {
    const dir = join(root, 'bad', 'h.example');
    await mkdir(dir, { recursive: true });
    const bad = (re: RegExp) => assert.throws(() => registryTls('h.example', [join(root, 'bad')]), (err: unknown) => err instanceof CertsDirError && re.test(err.message));
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    bad(new RegExp(`^${esc(join(dir, 'client.cert'))}: is a client certificate without its key ${esc(join(dir, 'client.key'))}`));
    await rm(join(dir, 'client.cert'));
    await copyFile(pki.clientKey, join(dir, 'client.key'));
    bad(new RegExp(`^${esc(join(dir, 'client.key'))}: is a client key without its certificate`));
    await copyFile(pki.clientCert, join(dir, 'client.cert'));
    await copyFile(pki.serverKey, join(dir, 'client.key'));
    bad(/client\.cert: and .*client\.key are not a usable certificate and key pair/);
    await rm(join(dir, 'client.cert'));
    await rm(join(dir, 'client.key'));
    await writeFile(join(dir, 'ca.crt'), 'not a certificate\n');
    bad(new RegExp(`^${esc(join(dir, 'ca.crt'))}: holds no PEM certificate`));
    await writeFile(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    bad(/ca\.crt: certificate 1 cannot be parsed/);
  });
});

describe('pulls from an HTTPS registry with certs.d (real docker-registry, http.tls)', () => {
  let f: OsFixture;
  let pki: RegistryPki;
  let tlsReg: Registry;
  let mtlsReg: Registry;
  let work: string;
  let certs: string;
  let dockerCerts: string;
  const saved = { ...process.env };
  let n = 0;

  before(async () => {
    if (process.getuid?.() !== 0) return;
    pki = await makeRegistryPki();
    work = await mkdtemp(join(tmpdir(), 'certsd-'));
    certs = join(work, 'containers-certs.d');
    dockerCerts = join(work, 'docker-certs.d');
    await mkdir(certs);
    await mkdir(dockerCerts);
    // registries.conf, policy.json and both certs.d roots of the test only (nothing of the machine's).
    process.env.ATOMHOST_CONTAINERS_CONF_DIR = join(work, 'containers');
    process.env.ATOMHOST_CONTAINERS_CERTS_DIR = certs;
    process.env.ATOMHOST_DOCKER_CERTS_DIR = dockerCerts;
    delete process.env.ATOMHOST_INSECURE_REGISTRIES;
    delete process.env.NODE_EXTRA_CA_CERTS;
    f = await OsFixture.createDeployed();
    tlsReg = await startRegistry(join(work, 'tls'), { tls: { certificate: pki.serverCert, key: pki.serverKey } });
    mtlsReg = await startRegistry(join(work, 'mtls'), { tls: { certificate: pki.serverCert, key: pki.serverKey, clientcas: [pki.clientCa] } });
    // skopeo pushes with its own certs.d-style directory holding the client certificate.
    const push = join(work, 'push-certs');
    await mkdir(push);
    await copyFile(pki.clientCert, join(push, 'client.cert'));
    await copyFile(pki.clientKey, join(push, 'client.key'));
    const image = { layers: [{ files: { hello: 'over tls\n' } }], cmd: ['/hello'] };
    await buildAndPush(tlsReg.host, 'app:1', image);
    await buildAndPush(mtlsReg.host, 'app:1', image, { certDir: push });
  });
  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await tlsReg?.stop();
    await mtlsReg?.stop();
    await f?.dispose();
    await pki?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const install = (image: string) => f.cli('container', 'install', '--name', `c${n++}`, image);
  const refused = async (image: string, re: RegExp) => {
    const before = await f.snapshot();
    const r = await install(image);
    assert.notEqual(r.exitCode, 0, `${image} must fail: ${r.stdout}`);
    assert.match(r.stderr, re);
    assert.deepEqual(await f.snapshot(), before, 'a refused pull changes nothing');
    return r.stderr;
  };
  const hostDir = (root: string, reg: Registry) => join(root, reg.host);

  test('without certs.d the untrusted certificate is refused, naming the ca.crt to add', async (t) => {
    if (!requireRoot(t)) return;
    await refused(`${tlsReg.host}/app:1`, new RegExp(`^error: registry ${esc(tlsReg.host)} is unreachable: the TLS certificate of ${esc(tlsReg.host)} is not trusted: [A-Z_]+; add the registry's CA as ${esc(join(certs, tlsReg.host, 'ca.crt'))}`));
  });

  test('a ca.crt of another CA is still refused, naming the file that does not sign it', async (t) => {
    if (!requireRoot(t)) return;
    await mkdir(hostDir(certs, tlsReg));
    await copyFile(pki.strangerCa, join(hostDir(certs, tlsReg), 'ca.crt'));
    try {
      await refused(`${tlsReg.host}/app:1`, new RegExp(`not trusted: [A-Z_]+ \\(the CAs in ${esc(join(certs, tlsReg.host, 'ca.crt'))} do not sign it\\)`));
    } finally {
      await rm(hostDir(certs, tlsReg), { recursive: true });
    }
  });

  test('trusted through /etc/containers/certs.d/HOST:PORT/ca.crt the pull works; /etc/docker/certs.d too', async (t) => {
    if (!requireRoot(t)) return;
    await mkdir(hostDir(certs, tlsReg));
    await copyFile(pki.ca, join(hostDir(certs, tlsReg), 'ca.crt'));
    let r = await install(`${tlsReg.host}/app:1`);
    assert.equal(r.exitCode, 0, r.stderr);
    await rm(hostDir(certs, tlsReg), { recursive: true });
    await mkdir(hostDir(dockerCerts, tlsReg));
    await copyFile(pki.ca, join(hostDir(dockerCerts, tlsReg), 'registry-ca.crt'));
    r = await install(`${tlsReg.host}/app:1`);
    assert.equal(r.exitCode, 0, r.stderr);
    await rm(hostDir(dockerCerts, tlsReg), { recursive: true });
  });

  test('mTLS: without a client certificate the handshake is refused, naming the files to add', async (t) => {
    if (!requireRoot(t)) return;
    await mkdir(hostDir(certs, mtlsReg));
    await copyFile(pki.ca, join(hostDir(certs, mtlsReg), 'ca.crt'));
    await refused(`${mtlsReg.host}/app:1`, new RegExp(`${esc(mtlsReg.host)} asks for a client certificate in the TLS handshake and none is configured; add it as ${esc(join(certs, mtlsReg.host, 'client.cert'))} with its key`));
  });

  test('mTLS: a NAME.cert without its NAME.key is an error naming the file', async (t) => {
    if (!requireRoot(t)) return;
    await copyFile(pki.clientCert, join(hostDir(certs, mtlsReg), 'me.cert'));
    await refused(`${mtlsReg.host}/app:1`, new RegExp(`${esc(join(certs, mtlsReg.host, 'me.cert'))}: is a client certificate without its key ${esc(join(certs, mtlsReg.host, 'me.key'))}`));
  });

  test('mTLS: a client certificate the registry does not accept is refused, naming it', async (t) => {
    if (!requireRoot(t)) return;
    // Signed by the server CA, which is not in the registry's clientcas.
    await copyFile(pki.serverCert, join(hostDir(certs, mtlsReg), 'me.cert'));
    await copyFile(pki.serverKey, join(hostDir(certs, mtlsReg), 'me.key'));
    await refused(`${mtlsReg.host}/app:1`, new RegExp(`${esc(mtlsReg.host)} refused the client certificate ${esc(join(certs, mtlsReg.host, 'me.cert'))}`));
  });

  test('mTLS: with NAME.cert and NAME.key the pull works', async (t) => {
    if (!requireRoot(t)) return;
    await copyFile(pki.clientCert, join(hostDir(certs, mtlsReg), 'me.cert'));
    await copyFile(pki.clientKey, join(hostDir(certs, mtlsReg), 'me.key'));
    const r = await install(`${mtlsReg.host}/app:1`);
    assert.equal(r.exitCode, 0, r.stderr);
  });
});
