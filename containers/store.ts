// The image store inside the sysroot's OSTree repository: each layer is an OSTree commit
// (ref atomhost/layer/<hex>; files are deduplicated across layers, images and the OS, and
// `ostree fsck` checks them), each image a small commit holding its manifest and config
// (ref atomhost/image/<manifest hex>). Checkouts are hardlink farms with whiteouts applied.
import { mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOk } from '../core/exec.js';
import { AtomhostError } from '../core/errors.js';
import { noProgress, type ProgressSink } from '../core/progress.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import { unpackLayer, type LayerWhiteouts } from './layer.js';
import { formatReference, parseReference } from './reference.js';
import { RegistryClient, type ImageConfig, type ImageManifest } from './registry.js';

export interface StoredImage {
  digest: string;
  reference: string;
  manifest: ImageManifest;
  config: ImageConfig;
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');
export const layerRef = (digest: string) => `atomhost/layer/${hex(digest)}`;
export const imageRef = (digest: string) => `atomhost/image/${hex(digest)}`;
const PARALLEL_LAYERS = 3;

/** Runs fns with at most `limit` at once; the first failure rejects (the others finish first). */
async function bounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      while (queue.length && errors.length === 0) {
        const item = queue.shift()!;
        await fn(item).catch((e: unknown) => errors.push(e));
      }
    }),
  );
  if (errors.length) throw errors[0];
}

export class ImageStore {
  readonly sysroot: Sysroot;

  constructor(sysroot: Sysroot) {
    this.sysroot = sysroot;
  }

  get repo(): string {
    return this.sysroot.repoPath;
  }

  #tmpRoot(): string {
    return join(this.sysroot.path, 'ostree', 'atomhost', 'tmp');
  }

  has(ref: string): boolean {
    return this.sysroot.resolveRev(ref) !== null;
  }

  /**
   * Pulls an image (every layer downloaded, verified and unpacked before anything is
   * committed: a bad layer stores nothing) and returns its manifest digest.
   */
  async pull(image: string, opts: { digest?: string; signal?: AbortSignal; progress?: ProgressSink } = {}): Promise<StoredImage> {
    const progress = opts.progress ?? noProgress;
    const ref = parseReference(image);
    if (opts.digest) ref.digest = opts.digest;
    const client = new RegistryClient(ref.registry);
    const resolved = await client.resolve(ref, opts.signal);
    const name = formatReference(ref);
    if (this.has(imageRef(resolved.digest))) return this.image(resolved.digest);
    await mkdir(this.#tmpRoot(), { recursive: true });
    const work = await mkdtemp(join(this.#tmpRoot(), 'pull-'));
    try {
      const missing = resolved.manifest.layers.filter((l) => !this.has(layerRef(l.digest)));
      const total = missing.reduce((n, l) => n + l.size, 0);
      let done = 0;
      const unpacked = new Map<string, { dir: string; wh: LayerWhiteouts }>();
      await bounded(missing, PARALLEL_LAYERS, async (l) => {
        const blob = join(work, `${hex(l.digest)}.blob`);
        await client.blobToFile(ref.repository, l, blob, (n) => {
          done += n;
          progress({ type: 'download', bytes: done, fetched: Math.min(done, total), requested: total, status: name });
        }, opts.signal);
        const dir = join(work, hex(l.digest));
        await mkdir(dir);
        const wh = await unpackLayer(blob, dir, `${l.digest} of ${name}`);
        await rm(blob);
        unpacked.set(l.digest, { dir, wh });
      });
      for (const l of missing) {
        const { dir, wh } = unpacked.get(l.digest)!;
        await runOk('ostree', [
          'commit', `--repo=${this.repo}`, `--branch=${layerRef(l.digest)}`, `--tree=dir=${dir}`, '--consume', '--link-checkout-speedup',
          `--subject=layer ${l.digest}`, `--add-metadata-string=atomhost.layer=${l.digest}`, `--add-metadata-string=atomhost.whiteouts=${JSON.stringify(wh)}`,
        ]);
      }
      const meta = join(work, 'image');
      await mkdir(meta);
      await writeFile(join(meta, 'manifest.json'), resolved.manifestBytes);
      await writeFile(join(meta, 'config.json'), resolved.configBytes);
      await writeFile(join(meta, 'reference'), name);
      await runOk('ostree', ['commit', `--repo=${this.repo}`, `--branch=${imageRef(resolved.digest)}`, `--tree=dir=${meta}`, `--subject=${name}`, `--add-metadata-string=atomhost.reference=${name}`, `--add-metadata-string=atomhost.digest=${resolved.digest}`]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return { digest: resolved.digest, reference: name, manifest: resolved.manifest, config: resolved.config };
  }

  /** Resolves what a reference points to now, without pulling layers. */
  async resolveDigest(image: string, signal?: AbortSignal): Promise<string> {
    const ref = parseReference(image);
    return (await new RegistryClient(ref.registry).resolve(ref, signal)).digest;
  }

  async image(digest: string): Promise<StoredImage> {
    const cat = (f: string) => runOk('ostree', ['cat', `--repo=${this.repo}`, imageRef(digest), `/${f}`]);
    if (!this.has(imageRef(digest))) throw new AtomhostError('AH_ERR_NOT_FOUND', `image ${digest} is not in the store`);
    const [manifest, config, reference] = await Promise.all([cat('manifest.json'), cat('config.json'), cat('reference')]);
    return { digest, reference: reference.trim(), manifest: JSON.parse(manifest) as ImageManifest, config: JSON.parse(config) as ImageConfig };
  }

  /** Checks the image out into `rootfs` (which must not exist): layers in order, whiteouts applied, files hardlinked. */
  async checkout(digest: string, rootfs: string): Promise<void> {
    const img = await this.image(digest);
    await mkdir(rootfs, { recursive: true });
    for (const l of img.manifest.layers) {
      const commit = this.sysroot.resolveRev(layerRef(l.digest));
      if (!commit) throw new AtomhostError('AH_ERR_CORRUPT', `layer ${l.digest} of ${img.reference} is missing from the store; pull the image again`);
      const wh = JSON.parse(this.sysroot.readCommit(commit).metadata['atomhost.whiteouts'] ?? '{"whiteouts":[],"opaque":[]}') as LayerWhiteouts;
      for (const dir of wh.opaque) {
        const full = join(rootfs, dir);
        for (const e of await readdir(full).catch(() => [] as string[])) await rm(join(full, e), { recursive: true, force: true });
      }
      for (const p of wh.whiteouts) await rm(join(rootfs, p), { recursive: true, force: true });
      await runOk('ostree', ['checkout', `--repo=${this.repo}`, '--union', '-H', commit, rootfs]);
    }
  }

  /** Image digests in the store. */
  async images(): Promise<string[]> {
    const out = await runOk('ostree', ['refs', `--repo=${this.repo}`, '--list', 'atomhost/image']);
    return out.split('\n').filter(Boolean).map((r) => `sha256:${r.split('/').pop()}`);
  }

  /** Removes images no one keeps and layers no kept image uses, then prunes objects. */
  async gc(keep: Set<string>): Promise<{ images: number; layers: number }> {
    const keepLayers = new Set<string>();
    let images = 0;
    for (const d of await this.images()) {
      if (keep.has(d)) for (const l of (await this.image(d)).manifest.layers) keepLayers.add(layerRef(l.digest));
      else {
        await runOk('ostree', ['refs', `--repo=${this.repo}`, '--delete', imageRef(d)]);
        images++;
      }
    }
    const layers = (await runOk('ostree', ['refs', `--repo=${this.repo}`, '--list', 'atomhost/layer'])).split('\n').filter(Boolean);
    let removed = 0;
    for (const l of layers) {
      if (keepLayers.has(l)) continue;
      await runOk('ostree', ['refs', `--repo=${this.repo}`, '--delete', l]);
      removed++;
    }
    // The sysroot's cleanup prunes with the deployments' commits protected.
    if (images || removed) await this.sysroot.cleanup();
    return { images, layers: removed };
  }

  async fsck(): Promise<string> {
    const r = await run('ostree', ['fsck', `--repo=${this.repo}`]);
    return `${r.stdout}${r.stderr}`;
  }

  async readFile(digest: string, path: string): Promise<string | null> {
    const r = await run('ostree', ['cat', `--repo=${this.repo}`, imageRef(digest), path]);
    return r.exitCode === 0 ? r.stdout : null;
  }
}

export async function readJsonFile<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}
