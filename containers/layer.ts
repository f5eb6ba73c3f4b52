// Reads one image layer (tar, gzip or not) into a directory, refusing any entry that
// would land outside it: absolute or `..` names, writes through a symlink, relative
// symlinks or hardlinks that point outside. Whiteouts are not written as files; they are
// returned so that checkout can apply them over the lower layers (OCI image spec).
import { createReadStream } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { chmodSync, closeSync, fchmodSync, fchownSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { join, posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { UnsafeLayerError } from './errors.js';

export type TreeEntry = [path: string, type: 'dir' | 'file' | 'symlink'];

export interface LayerWhiteouts {
  /** The layer's own entries as checked (paths and types): recorded with the stored layer. */
  entries?: TreeEntry[];
  /** Paths (relative, no leading slash) removed from the lower layers. */
  whiteouts: string[];
  /** Directories whose lower contents are hidden (opaque). */
  opaque: string[];
  /** Entries left out because OSTree cannot store them (device nodes, fifos). */
  skipped: string[];
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Normalizes a tar entry name to a relative path inside the root, or null if it escapes. */
export function safeEntryPath(name: string): string | null {
  if (name.startsWith('/')) return null;
  const norm = posix.normalize(name).replace(/\/+$/, '');
  if (norm === '.' || norm === '') return '';
  if (norm === '..' || norm.startsWith('../') || posix.isAbsolute(norm)) return null;
  return norm.replace(/^\.\//, '');
}

/** Whether a symlink at `entry` with `target` stays inside the root (absolute targets resolve inside it). */
export function symlinkStaysInside(entry: string, target: string): boolean {
  if (target.startsWith('/')) return true;
  const resolved = posix.normalize(posix.join(posix.dirname(entry), target));
  return !(resolved === '..' || resolved.startsWith('../'));
}

export async function noSymlinkParents(root: string, rel: string, layer: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const p of parts) {
    cur = join(cur, p);
    const st = await lstat(cur).catch(() => null);
    if (st?.isSymbolicLink()) throw new UnsafeLayerError(layer, rel, `would be written through the symlink ${posix.join(...parts.slice(0, parts.indexOf(p) + 1))}`);
  }
}

async function gunzipIfNeeded(path: string): Promise<Readable> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(2);
  await fh.read(head, 0, 2, 0);
  await fh.close();
  // Large reads and inflate chunks: fewer callbacks per layer (zlib's default is 16 KiB).
  const src = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (head[0] === 0x1f && head[1] === 0x8b) return src.pipe(createGunzip({ chunkSize: 256 * 1024 }));
  return src.pipe(new PassThrough());
}

export type ImageTree = Map<string, 'dir' | 'file' | 'symlink'>;

/**
 * Checks one tar entry against the image as the layers below (and this layer's earlier
 * entries) left it: `tree` is updated in place, and the entry recorded in `result`. Catches
 * escapes across layers too: an entry under a path that a lower layer made a symlink.
 */
function checkEntry(header: tar.Header, layer: string, tree: ImageTree, result: LayerWhiteouts): void {
  const set = (rel: string, type: TreeEntry[1]) => {
    tree.set(rel, type);
    result.entries!.push([rel, type]);
  };
  const underSymlink = (rel: string): string | null => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (tree.get(prefix) === 'symlink') return prefix;
    }
    return null;
  };
  const rel = safeEntryPath(header.name);
  if (rel === null) throw new UnsafeLayerError(layer, header.name, 'points outside the image root');
  if (rel === '') return;
  const via = underSymlink(rel);
  if (via) throw new UnsafeLayerError(layer, rel, `would be written through the symlink ${via}`);
  const base = posix.basename(rel);
  const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
  if (base === OPAQUE) {
    result.opaque.push(dir);
    for (const k of [...tree.keys()]) if (dir === '' || k.startsWith(`${dir}/`)) tree.delete(k);
    return;
  }
  if (base.startsWith(WH)) {
    const gone = posix.join(dir, base.slice(WH.length));
    result.whiteouts.push(gone);
    for (const k of [...tree.keys()]) if (k === gone || k.startsWith(`${gone}/`)) tree.delete(k);
    return;
  }
  switch (header.type) {
    case 'directory':
      set(rel, 'dir');
      return;
    case 'file':
    case 'contiguous-file':
      set(rel, 'file');
      return;
    case 'symlink':
      if (!symlinkStaysInside(rel, header.linkname ?? '')) throw new UnsafeLayerError(layer, header.name, `is a symlink to ${header.linkname}, outside the image root`);
      set(rel, 'symlink');
      return;
    case 'link': {
      const target = safeEntryPath(header.linkname ?? '');
      if (target === null || target === '') throw new UnsafeLayerError(layer, header.name, `is a hardlink to ${header.linkname}, outside the image root`);
      if (tree.get(target) !== 'file') throw new UnsafeLayerError(layer, header.name, `is a hardlink to ${header.linkname}, which is not a file of this image`);
      set(rel, 'file');
      return;
    }
    default:
      result.skipped.push(rel);
  }
}

/**
 * Reads a layer without writing anything: checks every entry against the image as the
 * layers below left it (`tree`, updated in place) and returns its whiteouts.
 */
export async function scanLayer(blobPath: string, layer: string, tree: ImageTree): Promise<LayerWhiteouts> {
  const result: LayerWhiteouts = { whiteouts: [], opaque: [], skipped: [], entries: [] };
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // The entry stream is destroyed with the error passed to next(): it must not throw it again.
    stream.on('error', () => {});
    try {
      checkEntry(header, layer, tree, result);
    } catch (err) {
      stream.resume();
      return next(err as Error);
    }
    stream.on('end', () => next());
    stream.resume();
  });
  await pipeline(await gunzipIfNeeded(blobPath), extract);
  return result;
}

/**
 * What an unpack has made in its directory (which starts empty), so that each entry costs
 * the few system calls that write it: paths that exist, and those known to be real
 * directories (never symlinks). Metadata calls are synchronous (microseconds each, the
 * event loop turns between entries); file data arrives chunk by chunk from the stream.
 */
class Made {
  readonly present = new Set<string>();
  readonly dirs = new Set<string>(['']);
  constructor(
    readonly root: string,
    readonly layer: string,
  ) {}

  mkdir(rel: string): void {
    mkdirSync(join(this.root, rel));
    this.present.add(rel);
    this.dirs.add(rel);
  }

  /** Removes what is at `rel` (and beneath it), if anything. */
  clear(rel: string): void {
    if (!this.present.has(rel)) return;
    rmSync(join(this.root, rel), { recursive: true, force: true });
    this.present.delete(rel);
    if (!this.dirs.delete(rel)) return;
    for (const set of [this.present, this.dirs]) for (const k of set) if (k.startsWith(`${rel}/`)) set.delete(k);
  }

  /**
   * Every parent of `rel` must be a real directory, never a symlink (refused as an escape,
   * naming `entry`); missing ones are created when `create`.
   */
  parents(rel: string, entry: string, create = true): void {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i];
      if (this.dirs.has(cur)) continue;
      if (this.present.has(cur)) {
        const st = lstatSync(join(this.root, cur));
        if (st.isSymbolicLink()) throw new UnsafeLayerError(this.layer, entry, `would be written through the symlink ${cur}`);
        // A file where a directory is needed: the same error a recursive mkdir gives.
        if (!st.isDirectory()) mkdirSync(join(this.root, rel, '..'), { recursive: true });
        this.dirs.add(cur);
      } else if (create) this.mkdir(cur);
      else return;
    }
  }
}

/**
 * Unpacks `blobPath` into the empty directory `root`; throws UnsafeLayerError on the first
 * bad entry. Given the image `tree` of the layers below, each entry is first checked
 * against it as scanLayer checks it (same errors, tree updated in place, `entries`
 * returned), in the same read: one parse per layer, what was checked is what is written.
 */
export async function unpackLayer(blobPath: string, root: string, layer: string, tree?: ImageTree): Promise<LayerWhiteouts> {
  const result: LayerWhiteouts = { whiteouts: [], opaque: [], skipped: [] };
  const checked: LayerWhiteouts = { whiteouts: [], opaque: [], skipped: [], entries: [] };
  const made = new Made(root, layer);
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // tar-stream's entry streams are streamx streams: track the end ourselves.
    let ended = false;
    let handled = false;
    let finished = false;
    const finish = (err?: unknown) => {
      if (finished) return;
      finished = true;
      next(err as Error | undefined);
    };
    stream.on('end', () => {
      ended = true;
      if (handled) finish();
    });
    stream.on('error', () => {});
    const handle = async () => {
      if (tree) checkEntry(header, layer, tree, checked);
      const rel = safeEntryPath(header.name);
      if (rel === null) throw new UnsafeLayerError(layer, header.name, 'points outside the image root');
      const base = posix.basename(rel);
      if (base === OPAQUE) {
        result.opaque.push(posix.dirname(rel) === '.' ? '' : posix.dirname(rel));
        return;
      }
      if (base.startsWith(WH)) {
        result.whiteouts.push(posix.join(posix.dirname(rel), base.slice(WH.length)).replace(/^\.\//, ''));
        return;
      }
      if (rel === '') return; // the root directory itself
      made.parents(rel, rel);
      const dest = join(root, rel);
      // setuid/setgid bits stay out of the host: the objects and checkouts are plain files
      // any local user could otherwise reach and run as the image's owner (root).
      const mode = (header.mode ?? 0o644) & 0o1777;
      switch (header.type) {
        case 'directory': {
          if (!made.dirs.has(rel)) made.clear(rel);
          if (!made.present.has(rel)) made.mkdir(rel);
          chmodSync(dest, mode);
          lchownSync(dest, header.uid ?? 0, header.gid ?? 0);
          return;
        }
        case 'file':
        case 'contiguous-file': {
          made.clear(rel);
          const fd = openSync(dest, 'wx', 0o600);
          made.present.add(rel);
          try {
            for await (const chunk of stream) writeSync(fd, chunk as Buffer);
            fchownSync(fd, header.uid ?? 0, header.gid ?? 0);
            fchmodSync(fd, mode);
          } finally {
            closeSync(fd);
          }
          return;
        }
        case 'symlink': {
          const target = header.linkname ?? '';
          if (!symlinkStaysInside(rel, target)) throw new UnsafeLayerError(layer, header.name, `is a symlink to ${target}, outside the image root`);
          made.clear(rel);
          symlinkSync(target, dest);
          made.present.add(rel);
          lchownSync(dest, header.uid ?? 0, header.gid ?? 0);
          return;
        }
        case 'link': {
          const target = safeEntryPath(header.linkname ?? '');
          if (target === null || target === '') throw new UnsafeLayerError(layer, header.name, `is a hardlink to ${header.linkname}, outside the image root`);
          made.parents(target, target, false);
          if (!made.present.has(target) || made.dirs.has(target)) throw new UnsafeLayerError(layer, header.name, `is a hardlink to ${header.linkname}, which is not a file of this layer`);
          made.clear(rel);
          linkSync(join(root, target), dest);
          made.present.add(rel);
          return;
        }
        default:
          // Device nodes and fifos: OSTree stores neither; runtimes create /dev themselves.
          result.skipped.push(rel);
      }
    };
    handle().then(
      () => {
        handled = true;
        if (ended) finish();
        else stream.resume();
      },
      (err: unknown) => {
        stream.resume();
        finish(err);
      },
    );
  });
  await pipeline(await gunzipIfNeeded(blobPath), extract);
  return tree ? { ...result, entries: checked.entries } : result;
}
