// A small PKI made with openssl for the registry TLS tests: a CA, a server certificate for
// 127.0.0.1 signed by it, and a client certificate signed by a second CA (the one an mTLS
// registry lists in http.tls.clientcas). All files are PEM in one temporary directory.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface RegistryPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCa: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here (a wrong ca.crt). */
  strangerCa: string;
  dispose(): Promise<void>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  await execa('openssl', ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=atomhost test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

async function issue(dir: string, name: string, ca: { cert: string; key: string }, ext: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await execa('openssl', ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await execa('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', extFile]);
  return { cert, key };
}

export async function makeRegistryPki(): Promise<RegistryPki> {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-regpki-'));
  const ca = await makeCa(dir, 'ca');
  const clientCa = await makeCa(dir, 'client-ca');
  const stranger = await makeCa(dir, 'stranger-ca');
  const server = await issue(dir, 'server', ca, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const client = await issue(dir, 'client', clientCa, 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCa: clientCa.cert,
    clientCert: client.cert,
    clientKey: client.key,
    strangerCa: stranger.cert,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
