// A real local registry and real images, for the demo, the tests and the benchmarks:
// Debian's docker-registry on a 127.0.0.1 port of its own (optionally behind htpasswd),
// images built with umoci from busybox-static and pushed with skopeo.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, rm, symlink, writeFile, mkdtemp } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Registry {
  host: string;
  storage: string;
  stop(): Promise<void>;
}

export interface RegistryTlsFiles {
  /** PEM files: the server certificate (for 127.0.0.1) and its key. */
  certificate: string;
  key: string;
  /** CA files whose client certificates it requires (mutual TLS); none: no client certificate asked. */
  clientcas?: string[];
}

/** Starts docker-registry; with `tls` it serves HTTPS only (http.tls), and with `tls.clientcas` requires a client certificate. */
export async function startRegistry(dir: string, opts: { htpasswd?: { user: string; password: string }; tls?: RegistryTlsFiles } = {}): Promise<Registry> {
  const port = await freePort();
  const storage = join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  let auth = '';
  if (opts.htpasswd) {
    await execa('htpasswd', ['-Bbc', join(dir, 'htpasswd'), opts.htpasswd.user, opts.htpasswd.password]);
    auth = `auth:\n  htpasswd:\n    realm: atomhost-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  let tls = '';
  if (opts.tls) {
    tls = `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n`;
    if (opts.tls.clientcas?.length) tls += `    clientcas:\n${opts.tls.clientcas.map((c) => `      - ${c}\n`).join('')}`;
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`);
  // docker-registry reads REGISTRY_* variables as config overrides: REGISTRY_AUTH_FILE (meant for atomhost) would break it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: 'ignore', env });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    // An HTTPS registry (which may demand a client certificate) is up once its port accepts connections.
    const ok = opts.tls ? await portOpen(port) : await fetch(`http://${host}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) break;
    if (i === 99) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    storage,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r).once('error', r));
    },
  };
}

export interface LayerSpec {
  files?: Record<string, string | Buffer>;
  /** Paths deleted in this layer (umoci writes whiteouts for them). */
  remove?: string[];
  busybox?: boolean;
}

export interface ImageSpec {
  layers: LayerSpec[];
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
}

const APPLETS = ['sh', 'httpd', 'sleep', 'cat', 'echo', 'ls', 'true', 'false', 'wget'];

/** Builds an image with umoci (one repack per layer) and pushes it; returns its manifest digest. */
export async function buildAndPush(registry: string, name: string, spec: ImageSpec, opts: { creds?: string; certDir?: string } = {}): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'atomhost-img-'));
  try {
    const layout = join(work, 'layout');
    await execa('umoci', ['init', '--layout', layout]);
    await execa('umoci', ['new', '--image', `${layout}:t`]);
    for (const layer of spec.layers) {
      const bundle = join(work, 'bundle');
      await execa('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
      const rootfs = join(bundle, 'rootfs');
      if (layer.busybox) {
        await mkdir(join(rootfs, 'bin'), { recursive: true });
        await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
        await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
        for (const a of APPLETS) await symlink('busybox', join(rootfs, 'bin', a));
      }
      for (const [p, content] of Object.entries(layer.files ?? {})) {
        await mkdir(dirname(join(rootfs, p)), { recursive: true });
        await writeFile(join(rootfs, p), content);
      }
      for (const p of layer.remove ?? []) await rm(join(rootfs, p), { recursive: true, force: true });
      await execa('umoci', ['repack', '--image', `${layout}:t`, bundle]);
      await rm(bundle, { recursive: true, force: true });
    }
    const cfg = ['config', '--image', `${layout}:t`];
    for (const c of spec.cmd ?? []) cfg.push(`--config.cmd=${c}`);
    for (const e of spec.entrypoint ?? []) cfg.push(`--config.entrypoint=${e}`);
    for (const e of spec.env ?? []) cfg.push(`--config.env=${e}`);
    if (cfg.length > 3) await execa('umoci', cfg);
    // certDir: a certs.d-style directory with the client certificate an mTLS registry asks for.
    const dest = ['--dest-tls-verify=false', ...(opts.creds ? [`--dest-creds=${opts.creds}`] : []), ...(opts.certDir ? [`--dest-cert-dir=${opts.certDir}`] : [])];
    await execa('skopeo', ['copy', '--quiet', ...dest, `oci:${layout}:t`, `docker://${registry}/${name}`]);
    const { stdout } = await execa('skopeo', ['inspect', '--tls-verify=false', ...(opts.creds ? [`--creds=${opts.creds}`] : []), ...(opts.certDir ? [`--cert-dir=${opts.certDir}`] : []), '--format', '{{.Digest}}', `docker://${registry}/${name}`]);
    return stdout.trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Where the registry keeps a blob on disk (tests corrupt it there). */
export function blobPath(storage: string, digest: string): string {
  const hex = digest.replace('sha256:', '');
  return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

