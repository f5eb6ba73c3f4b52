// The image store inside the sysroot's OSTree repository: each layer is an OSTree commit
// (ref atomhost/layer/<hex>; files are deduplicated across layers, images and the OS, and
// `ostree fsck` checks them), each image a small commit holding its manifest and config
// (ref atomhost/image/<manifest hex>). Checkouts are hardlink farms with whiteouts applied.
import { mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runOk } from '../core/exec.js';
import { AtomhostError } from '../core/errors.js';
import { noProgress, type ProgressSink } from '../core/progress.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import { noSymlinkParents, scanLayer, unpackLayer, type ImageTree, type LayerWhiteouts, type TreeEntry } from './layer.js';
import { openImage } from './image-source.js';
import { formatReference } from './reference.js';
import type { ImageConfig, ImageManifest } from './registry.js';

export interface StoredImage {
  digest: string;
  reference: string;
  manifest: ImageManifest;
  config: ImageConfig;
}

const dirnameOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const posixBase = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const hex = (digest: string) => digest.replace(/^sha256:/, '');
export const layerRef = (digest: string) => `atomhost/layer/${hex(digest)}`;
export const imageRef = (digest: string) => `atomhost/image/${hex(digest)}`;
const PARALLEL_LAYERS = 3;
/** Commit metadata: the layer's entries as they were checked (JSON [path, type][]). */
const TREE_KEY = 'atomhost.tree';

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
    // registries.conf decides the name and where it comes from (a mirror, a rewritten location).
    const { name: logical, source, client, resolved } = await openImage(image, { digest: opts.digest, signal: opts.signal });
    const ref = source.reference;
    const name = formatReference(logical);
    // Stored under another name already: the same bytes, returned under the name asked for.
    if (this.has(imageRef(resolved.digest))) return { ...(await this.image(resolved.digest)), reference: name };
    await mkdir(this.#tmpRoot(), { recursive: true });
    const work = await mkdtemp(join(this.#tmpRoot(), 'pull-'));
    try {
      const missing = resolved.manifest.layers.filter((l) => !this.#layerStored(l.digest));
      const total = missing.reduce((n, l) => n + l.size, 0);
      let done = 0;
      await bounded(missing, PARALLEL_LAYERS, (l) =>
        client.blobToFile(ref.repository, l, join(work, `${hex(l.digest)}.blob`), (n) => {
          done += n;
          progress({ type: 'download', bytes: done, fetched: Math.min(done, total), requested: total, status: name });
        }, opts.signal),
      );
      // Check every layer, in order, against the image the layers below make (escapes
      // across layers included), before anything is stored.
      const tree: ImageTree = new Map();
      const checked = new Map<string, LayerWhiteouts>();
      for (const l of resolved.manifest.layers) {
        const blob = join(work, `${hex(l.digest)}.blob`);
        const stored = this.#layerStored(l.digest);
        const wh = stored ? await this.#storedLayerTree(l.digest, tree) : await scanLayer(blob, `${l.digest} of ${name}`, tree);
        if (!stored) checked.set(l.digest, wh);
      }
      for (const l of missing) await this.#commitLayer(l.digest, join(work, `${hex(l.digest)}.blob`), checked.get(l.digest)!, work, name);
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

  /**
   * Imports a checked layer. The same tar reader that checked it unpacks it into a private
   * directory, which is what OSTree commits: the raw tar is never read by another parser
   * (libarchive and tar-stream disagree on pax global headers, so the checked name would
   * not be the stored one). The checked entries are recorded with the commit, so layers
   * above it are checked against that record, never against `ostree ls` text.
   */
  async #commitLayer(digest: string, blob: string, wh: LayerWhiteouts, work: string, image: string): Promise<void> {
    const dir = join(work, `${hex(digest)}.tree`);
    await mkdir(dir, { mode: 0o700 });
    const unpacked = await unpackLayer(blob, dir, `${digest} of ${image}`);
    const meta = [
      `--repo=${this.repo}`, `--branch=${layerRef(digest)}`, `--subject=layer ${digest}`, `--add-metadata-string=atomhost.layer=${digest}`,
      `--add-metadata-string=atomhost.whiteouts=${JSON.stringify({ whiteouts: unpacked.whiteouts, opaque: unpacked.opaque, skipped: unpacked.skipped })}`,
      `--add-metadata-string=${TREE_KEY}=${JSON.stringify(wh.entries ?? [])}`,
    ];
    await runOk('ostree', ['commit', ...meta, `--tree=dir=${dir}`, '--consume', '--link-checkout-speedup']);
  }

  /** A layer stored with its checked entries (layers stored before they were recorded are imported again). */
  #layerStored(digest: string): boolean {
    const commit = this.sysroot.resolveRev(layerRef(digest));
    return commit !== null && this.sysroot.readCommit(commit).metadata[TREE_KEY] !== undefined;
  }

  /** Replays a stored layer's entries into the image tree (for the cross-layer checks of the layers above it). */
  async #storedLayerTree(digest: string, tree: ImageTree): Promise<LayerWhiteouts> {
    const commit = this.sysroot.resolveRev(layerRef(digest))!;
    const wh = JSON.parse(this.sysroot.readCommit(commit).metadata['atomhost.whiteouts'] ?? '{"whiteouts":[],"opaque":[],"skipped":[]}') as LayerWhiteouts;
    for (const d of wh.opaque) for (const k of [...tree.keys()]) if (d === '' || k.startsWith(`${d}/`)) tree.delete(k);
    for (const g of wh.whiteouts) for (const k of [...tree.keys()]) if (k === g || k.startsWith(`${g}/`)) tree.delete(k);
    for (const [path, type] of JSON.parse(this.sysroot.readCommit(commit).metadata[TREE_KEY] ?? '[]') as TreeEntry[]) tree.set(path, type);
    return wh;
  }

  /** Resolves what a reference points to now, without pulling layers. */
  async resolveDigest(image: string, signal?: AbortSignal): Promise<string> {
    return (await openImage(image, { signal })).resolved.digest;
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
      // Never through a symlink of a lower layer: the path must resolve beneath rootfs.
      for (const p of [...wh.opaque.map((d) => `${d}/.wh..wh..opq`), ...wh.whiteouts]) await noSymlinkParents(rootfs, p, `${l.digest} of ${img.reference}`);
      for (const dir of wh.opaque) {
        const full = join(rootfs, dir);
        for (const e of await readdir(full).catch(() => [] as string[])) await rm(join(full, e), { recursive: true, force: true });
      }
      for (const p of wh.whiteouts) await rm(join(rootfs, p), { recursive: true, force: true });
      await runOk('ostree', ['checkout', `--repo=${this.repo}`, '--union', '-H', commit, rootfs]);
      // Layers imported from their tar keep the whiteout markers as files: drop them.
      for (const p of wh.whiteouts) await rm(join(rootfs, dirnameOf(p), `.wh.${posixBase(p)}`), { force: true });
      for (const d of wh.opaque) await rm(join(rootfs, d, '.wh..wh..opq'), { force: true });
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
}
