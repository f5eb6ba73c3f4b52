// Real registry and real images for the container tests: Debian's docker-registry on a
// 127.0.0.1 port of the test's own (optionally behind htpasswd), images built with umoci
// from busybox-static and pushed with skopeo.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, rm, symlink, writeFile, mkdtemp } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
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

export interface Registry {
  host: string;
  storage: string;
  stop(): Promise<void>;
}

export async function startRegistry(dir: string, opts: { htpasswd?: { user: string; password: string } } = {}): Promise<Registry> {
  const port = await freePort();
  const storage = join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  let auth = '';
  if (opts.htpasswd) {
    await execa('htpasswd', ['-Bbc', join(dir, 'htpasswd'), opts.htpasswd.user, opts.htpasswd.password]);
    auth = `auth:\n  htpasswd:\n    realm: atomhost-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
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

const APPLETS = ['sh', 'httpd', 'sleep', 'cat', 'echo', 'ls', 'true', 'false'];

/** Builds an image with umoci (one repack per layer) and pushes it; returns its manifest digest. */
export async function buildAndPush(registry: string, name: string, spec: ImageSpec, opts: { creds?: string } = {}): Promise<string> {
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
    const dest = ['--dest-tls-verify=false', ...(opts.creds ? [`--dest-creds=${opts.creds}`] : [])];
    await execa('skopeo', ['copy', '--quiet', ...dest, `oci:${layout}:t`, `docker://${registry}/${name}`]);
    const { stdout } = await execa('skopeo', ['inspect', '--tls-verify=false', ...(opts.creds ? [`--creds=${opts.creds}`] : []), '--format', '{{.Digest}}', `docker://${registry}/${name}`]);
    return stdout.trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A file that umoci writes into every layer's rootfs would hide the test's meaning; this finds a blob on disk. */
export function blobPath(storage: string, digest: string): string {
  const hex = digest.replace('sha256:', '');
  return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** Pushes a blob with a monolithic upload; returns its digest. */
export async function pushBlob(registry: string, name: string, data: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const start = await fetch(`http://${registry}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const loc = new URL(start.headers.get('location')!, `http://${registry}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(registry: string, name: string, tag: string, manifest: object, mediaType: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const r = await fetch(`http://${registry}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': mediaType } });
  if (r.status !== 201) throw new Error(`manifest put: ${r.status} ${await r.text()}`);
  return r.headers.get('docker-content-digest')!;
}

/** A one-layer image made by hand from a tar of the given entries (to push malicious layers). */
export async function pushRawImage(registry: string, name: string, tag: string, entries: { name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; content?: string }[]): Promise<string> {
  const tar = (await import('tar-stream')).default;
  const pack = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o644 } as const;
    if (!e.type || e.type === 'file') pack.entry(header, e.content ?? 'x');
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const layer = Buffer.concat(chunks);
  const layerDigest = await pushBlob(registry, name, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = await pushBlob(registry, name, config);
  return pushManifest(
    registry,
    name,
    tag,
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    },
    'application/vnd.oci.image.manifest.v1+json',
  );
}
