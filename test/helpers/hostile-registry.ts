// A hostile registry: a node http(s) server on 127.0.0.1 that answers the distribution
// API the way a malicious or broken registry would (lying digests, endless or truncated
// bodies, redirect loops, downgrading redirects, token realms in clear). It is not a fake
// of the real registry: the real one (docker-registry) serves the honest images of the
// other tests; this one serves exactly the bytes a test hands it and records every request.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface SeenRequest {
  method: string;
  path: string;
  authorization?: string;
  range?: string;
}

export class HostileRegistry {
  readonly host: string;
  readonly url: string;
  /** Every request received, in order (what a test asserts credentials and ranges on). */
  readonly seen: SeenRequest[] = [];
  readonly #server: Server;
  readonly #routes = new Map<string, Handler>();

  private constructor(server: Server, scheme: 'http' | 'https') {
    this.#server = server;
    this.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.url = `${scheme}://${this.host}`;
  }

  static async start(opts: { tls?: { key: string; cert: string } } = {}): Promise<HostileRegistry> {
    let reg: HostileRegistry | undefined;
    const handle = (req: IncomingMessage, res: ServerResponse) => void reg!.#handle(req, res);
    const server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handle) : createHttpServer(handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    reg = new HostileRegistry(server, opts.tls ? 'https' : 'http');
    return reg;
  }

  /** Answers `path` (exact, without the query) with `handler`, replacing any earlier one. */
  on(path: string, handler: Handler): this {
    this.#routes.set(path, handler);
    return this;
  }

  /** Forgets every route and recorded request. */
  reset(): void {
    this.#routes.clear();
    this.seen.length = 0;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    this.seen.push({ method: req.method ?? 'GET', path, authorization: req.headers.authorization, range: req.headers.range });
    const h = this.#routes.get(path) ?? (path === '/v2/' ? (_q: IncomingMessage, r: ServerResponse) => json(r, 200, {}) : undefined);
    try {
      if (h) await h(req, res);
      else json(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
    } catch {
      res.destroy();
    }
  }

  async stop(): Promise<void> {
    // Stalled and endless answers are cut, so the server closes at once.
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export function json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': type, 'content-length': bytes.length });
  res.end(bytes);
}

/** Answers with exactly these bytes (a lie about their digest is the caller's). */
export const bytesOf = (bytes: Buffer, type = 'application/octet-stream'): Handler => (_req, res) => {
  res.writeHead(200, { 'content-type': type, 'content-length': bytes.length });
  res.end(bytes);
};

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  bytes: Buffer;
  digest: string;
}
export const blob = (bytes: Buffer): Blob => ({ bytes, digest: sha256(bytes) });

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** A valid one-layer image, the raw material every hostile answer is made from. */
export interface Image {
  layer: Blob;
  config: Blob;
  manifest: Blob;
  manifestDoc: Record<string, unknown>;
  configDoc: Record<string, unknown>;
}

export async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o755 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function manifestFor(config: Blob, layers: Blob[]): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.bytes.length })),
  };
}

export async function makeImage(files: Record<string, string> = { hello: '#!/bin/sh\necho hello\n' }): Promise<Image> {
  const layer = blob(await layerTar(files));
  const configDoc = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
  const config = blob(Buffer.from(JSON.stringify(configDoc)));
  const manifestDoc = manifestFor(config, [layer]);
  return { layer, config, manifest: blob(Buffer.from(JSON.stringify(manifestDoc))), manifestDoc, configDoc };
}

/** Serves an image honestly under repo:tag and by digest; tests then replace single routes. */
export function serveImage(reg: HostileRegistry, repo: string, tag: string, img: Image): void {
  reg.on(`/v2/${repo}/manifests/${tag}`, bytesOf(img.manifest.bytes, OCI_MANIFEST));
  reg.on(`/v2/${repo}/manifests/${img.manifest.digest}`, bytesOf(img.manifest.bytes, OCI_MANIFEST));
  reg.on(`/v2/${repo}/blobs/${img.config.digest}`, bytesOf(img.config.bytes));
  reg.on(`/v2/${repo}/blobs/${img.layer.digest}`, bytesOf(img.layer.bytes));
}

/** A self-signed certificate for 127.0.0.1 made with openssl; `caFile` goes into NODE_EXTRA_CA_CERTS. */
export async function selfSignedCert(): Promise<{ key: string; cert: string; caFile: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-tls-'));
  const keyFile = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(caFile, 'utf8'), caFile, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** What a failed pull must leave alone: the repo's refs and the files atomhost keeps in the sysroot and /var. */
export async function storeState(sysroot: string, osname = 'testos'): Promise<{ refs: string; files: string[] }> {
  const refs = (await execa('ostree', ['refs', `--repo=${sysroot}/ostree/repo`])).stdout.split('\n').sort().join('\n');
  const files: string[] = [];
  for (const dir of [join(sysroot, 'ostree', 'atomhost'), join(sysroot, 'ostree', 'deploy', osname, 'var', 'lib', 'atomhost')]) {
    const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    files.push(...entries.map((e) => join(dir, e)));
  }
  // atomhost's scratch directory may be created by a pull; what matters is that nothing is left in it.
  const tmp = join(sysroot, 'ostree', 'atomhost', 'tmp');
  return { refs, files: files.filter((p) => p !== tmp).sort() };
}
