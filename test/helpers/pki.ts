// A small private PKI made by openssl for the TLS tests (real certificates, no mocks): the
// fleet's CA with a server certificate for 127.0.0.1 and a client certificate, and another CA
// with a client certificate of its own (an intruder), all P-256, valid two days.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';

export interface Pki {
  dir: string;
  /** PEM file paths */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** a server certificate for 127.0.0.1 without clientAuth usage (what etcd's gateway trips over) */
  serverOnlyCert: string;
  serverOnlyKey: string;
  otherCaCert: string;
  otherClientCert: string;
  otherClientKey: string;
  /** removes dir */
  remove(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await execa('openssl', args, { cwd: dir });
}

/**
 * The server certificate (SAN IP:127.0.0.1) is good for serverAuth and clientAuth: an etcd
 * member with --client-cert-auth presents its own certificate as a client to itself (its JSON
 * gateway), so etcd needs both.
 */
export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) => openssl(dir, ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
  const leaf = async (name: string, caName: string, ext: string) => {
    await openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    await writeFile(join(dir, `${name}.ext`), ext);
    await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  try {
    await ca('fleet-ca');
    await ca('other-ca');
    await leaf('server', 'fleet-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    await leaf('server-only', 'fleet-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    await leaf('node-1', 'fleet-ca', 'extendedKeyUsage=clientAuth\n');
    await leaf('intruder', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('fleet-ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('node-1.crt'),
    clientKey: p('node-1.key'),
    serverOnlyCert: p('server-only.crt'),
    serverOnlyKey: p('server-only.key'),
    otherCaCert: p('other-ca.crt'),
    otherClientCert: p('intruder.crt'),
    otherClientKey: p('intruder.key'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
