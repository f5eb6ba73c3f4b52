// The image store inside the sysroot's OSTree repository: each layer is an OSTree commit
// (ref atomhost/layer/<hex>; files are deduplicated across layers, images and the OS, and
// `ostree fsck` checks them), each image a small commit holding its manifest and config
// (ref atomhost/image/<manifest hex>). Checkouts are hardlink farms with whiteouts applied.
// Every repository operation goes through the libostree bridge, off the event loop: no
// `ostree` process per layer.
import { mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomhostError } from '../core/errors.js';
import { noProgress, type ProgressSink } from '../core/progress.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import { noSymlinkParents, unpackLayer, type ImageTree, type LayerWhiteouts, type TreeEntry } from './layer.js';
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

interface StoredLayer {
  whiteouts: LayerWhiteouts;
  entries: TreeEntry[];
}

/** Replays a stored layer's record into the image tree (for the cross-layer checks of the layers above it). */
function replayLayer(rec: StoredLayer, tree: ImageTree): void {
  const wh = rec.whiteouts;
  for (const d of wh.opaque) for (const k of [...tree.keys()]) if (d === '' || k.startsWith(`${d}/`)) tree.delete(k);
  for (const g of wh.whiteouts) for (const k of [...tree.keys()]) if (k === g || k.startsWith(`${g}/`)) tree.delete(k);
  for (const [path, type] of rec.entries) tree.set(path, type);
}

/**
 * Starts fn for every item with at most `limit` running at once, in order, and returns
 * each item's promise (so a caller can wait for the first while the others run). After a
 * failure, items not yet started are skipped (their promise rejects with that failure).
 */
function startBounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void>[] {
  let running = 0;
  let failed: unknown = null;
  const waiting: (() => void)[] = [];
  const slot = () => (running < limit ? Promise.resolve() : new Promise<void>((r) => waiting.push(r)));
  return items.map(async (item) => {
    await slot();
    if (failed) throw failed;
    running++;
    try {
      await fn(item);
    } catch (err) {
      failed ??= err;
      throw err;
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
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
   * Pulls an image and returns its manifest digest. Layers download concurrently; each is
   * checked and unpacked in one read, in order (a layer is checked against the image the
   * layers below make, escapes across layers included), and committed while the next one
   * downloads and unpacks. Refs are set only when every layer passed: a bad layer leaves
   * no ref (its siblings' objects are unreferenced, and pruned).
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
    const layers = resolved.manifest.layers;
    // Read before any commit runs: the stored layers' records, for the cross-layer checks.
    const stored = new Map(layers.map((l) => [l.digest, this.#storedRecord(l.digest)] as const).filter((e): e is [string, StoredLayer] => e[1] !== null));
    const missing = layers.filter((l, i) => !stored.has(l.digest) && layers.findIndex((o) => o.digest === l.digest) === i);
    const total = missing.reduce((n, l) => n + l.size, 0);
    let done = 0;
    const blob = (digest: string) => join(work, `${hex(digest)}.blob`);
    // A bad layer stops the downloads still running.
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const downloads = startBounded(missing, PARALLEL_LAYERS, (l) =>
      client.blobToFile(ref.repository, l, blob(l.digest), (n) => {
        done += n;
        progress({ type: 'download', bytes: done, fetched: Math.min(done, total), requested: total, status: name });
      }, signal),
    );
    const downloaded = new Map(missing.map((l, i) => [l.digest, downloads[i]] as const));
    for (const d of downloads) d.catch(() => {}); // awaited below, in layer order
    const commits = new Map<string, string>();
    const queued = new Set<string>();
    let committing: Promise<void> = Promise.resolve();
    try {
      const tree: ImageTree = new Map();
      for (const [i, l] of layers.entries()) {
        const rec = stored.get(l.digest);
        if (rec) {
          replayLayer(rec, tree);
          continue;
        }
        await downloaded.get(l.digest);
        const dir = join(work, `${i}.tree`);
        await mkdir(dir, { mode: 0o700 });
        const unpacked = await unpackLayer(blob(l.digest), dir, `${l.digest} of ${name}`, tree);
        // A layer listed twice is checked at each place, and stored once.
        if (queued.has(l.digest)) continue;
        queued.add(l.digest);
        // Committed (off the event loop, one at a time) while the next layer unpacks.
        const prev = committing;
        committing = (async () => {
          await prev;
          commits.set(l.digest, await this.#commitLayer(l.digest, dir, unpacked));
        })();
        committing.catch(() => {}); // awaited in order, or after a failure, below
      }
      await committing;
      const meta = join(work, 'image');
      await mkdir(meta);
      await writeFile(join(meta, 'manifest.json'), resolved.manifestBytes);
      await writeFile(join(meta, 'config.json'), resolved.configBytes);
      await writeFile(join(meta, 'reference'), name);
      const img = await this.sysroot.commitDirectory(meta, { subject: name, metadata: { 'atomhost.reference': name, 'atomhost.digest': resolved.digest }, consume: true });
      // Every ref at once, in one transaction: the image is there whole, or not at all.
      await this.sysroot.setRefs({ ...Object.fromEntries([...commits].map(([d, c]) => [layerRef(d), c])), [imageRef(resolved.digest)]: img });
    } catch (err) {
      stop.abort();
      await Promise.allSettled([committing, ...downloads]);
      throw err;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return { digest: resolved.digest, reference: name, manifest: resolved.manifest, config: resolved.config };
  }

  /**
   * Commits a checked, unpacked layer (the directory's files are moved into the repository,
   * not copied). The checked entries are recorded with the commit, so layers above it are
   * checked against that record, never against a listing of the stored tree.
   */
  async #commitLayer(digest: string, dir: string, unpacked: LayerWhiteouts): Promise<string> {
    return this.sysroot.commitDirectory(dir, {
      subject: `layer ${digest}`,
      metadata: {
        'atomhost.layer': digest,
        'atomhost.whiteouts': JSON.stringify({ whiteouts: unpacked.whiteouts, opaque: unpacked.opaque, skipped: unpacked.skipped }),
        [TREE_KEY]: JSON.stringify(unpacked.entries ?? []),
      },
      consume: true,
    });
  }

  /** A stored layer's record (whiteouts and checked entries); null when not stored, or stored before entries were recorded (imported again). */
  #storedRecord(digest: string): StoredLayer | null {
    const commit = this.sysroot.resolveRev(layerRef(digest));
    if (commit === null) return null;
    const md = this.sysroot.readCommit(commit).metadata;
    if (md[TREE_KEY] === undefined) return null;
    return {
      whiteouts: JSON.parse(md['atomhost.whiteouts'] ?? '{"whiteouts":[],"opaque":[],"skipped":[]}') as LayerWhiteouts,
      entries: JSON.parse(md[TREE_KEY]) as TreeEntry[],
    };
  }

  /** Resolves what a reference points to now, without pulling layers. */
  async resolveDigest(image: string, signal?: AbortSignal): Promise<string> {
    return (await openImage(image, { signal })).resolved.digest;
  }

  async image(digest: string): Promise<StoredImage> {
    if (!this.has(imageRef(digest))) throw new AtomhostError('AH_ERR_NOT_FOUND', `image ${digest} is not in the store`);
    const cat = async (f: string) => String(await this.sysroot.readCommitFile(imageRef(digest), `/${f}`));
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
      await this.sysroot.checkoutUnion(commit, rootfs);
      // Layers imported from their tar keep the whiteout markers as files: drop them.
      for (const p of wh.whiteouts) await rm(join(rootfs, dirnameOf(p), `.wh.${posixBase(p)}`), { force: true });
      for (const d of wh.opaque) await rm(join(rootfs, d, '.wh..wh..opq'), { force: true });
    }
  }

  /** Image digests in the store. */
  async images(): Promise<string[]> {
    return this.sysroot.listRefs('atomhost/image').map((r) => `sha256:${r.split('/').pop()}`);
  }

  /** Removes images no one keeps and layers no kept image uses, then prunes objects. */
  async gc(keep: Set<string>): Promise<{ images: number; layers: number }> {
    const keepLayers = new Set<string>();
    const drop: Record<string, null> = {};
    for (const d of await this.images()) {
      if (keep.has(d)) for (const l of (await this.image(d)).manifest.layers) keepLayers.add(layerRef(l.digest));
      else drop[imageRef(d)] = null;
    }
    for (const l of this.sysroot.listRefs('atomhost/layer')) if (!keepLayers.has(l)) drop[l] = null;
    await this.sysroot.setRefs(drop);
    const images = Object.keys(drop).filter((r) => r.startsWith('atomhost/image/')).length;
    const removed = Object.keys(drop).length - images;
    // The sysroot's cleanup prunes with the deployments' commits protected.
    if (images || removed) await this.sysroot.cleanup();
    return { images, layers: removed };
  }
}
