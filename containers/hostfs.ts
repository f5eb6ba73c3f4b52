// /exports/hostfs of Project Atomic system containers: files the image puts on the host
// (etcd's etcdctl and etcd.conf, flannel's sysconfig), as `atomic install --system` did
// (Atomic/rpm_host_install.py rm_add_files_to_host): manifest.json's renameFiles maps
// image paths to host paths ($CONF_DIRECTORY/$NAME/etcd.conf, /usr/local/bin/${NAME}ctl),
// installedFilesTemplate files are rendered with the container's values. Unlike Atomic,
// a file that atomhost did not install for this container is never overwritten: the
// install is refused, naming the file.
//
// What a container owns is recorded in its revision (ContainerSpec.hostFiles, contents in
// the unit store), and applied with the revision's units: a rollback puts the previous
// set back, an uninstall removes it. A file the user changed since it was installed is
// kept (neither overwritten nor removed), as Atomic kept it.
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, rmdir, unlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { atomicWriteFile } from '../core/atomic-write.js';
import { AtomhostError } from '../core/errors.js';
import type { ContainerSpec, HostFileSpec, Revision } from '../core/revision.js';
import { renderTemplate } from '../core/values.js';

/** Where hostfs may put files: writable, per-deployment (/etc) or shared (/var, /usr/local → /var/usrlocal). */
const ALLOWED = ['/etc/', '/usr/local/', '/var/', '/opt/', '/srv/'];
/** atomhost's own state is no container's to write. */
const FORBIDDEN = ['/var/lib/atomhost/', '/etc/atomhost/'];
const MAX_ENTRIES = 4096;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export class UnsafeHostFileError extends AtomhostError {
  constructor(image: string, entry: string, why: string) {
    super('AH_ERR_UNSAFE_LAYER', `${image}: /exports/hostfs entry ${JSON.stringify(entry)} ${why}; nothing was installed`, { details: { image, entry } });
    this.name = 'UnsafeHostFileError';
  }
}

export class HostFileConflictError extends AtomhostError {
  constructor(container: string, path: string, why: string) {
    super('AH_ERR_INVALID_ARGUMENT', `${container}: will not install ${path} on the host: ${why}; move it away (or set another CONF_DIRECTORY/--name) and try again`, { details: { container, path } });
    this.name = 'HostFileConflictError';
  }
}

export interface HostfsManifest {
  renameFiles?: Record<string, string>;
  installedFilesTemplate?: string[];
}

export interface ContentStore {
  put(content: string | Buffer): Promise<string>;
  getBytes(sha: string): Promise<Buffer>;
}

/** A host path as a hostfs entry may name it: absolute, normal, in a writable place. */
export function checkHostPath(path: string, image: string, entry: string): void {
  const bad = (why: string) => new UnsafeHostFileError(image, entry, why);
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 4096) throw bad(`maps to ${JSON.stringify(path)}, not an absolute path`);
  if (CONTROL.test(path)) throw bad('maps to a path with a control character');
  if (path.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) throw bad(`maps to ${JSON.stringify(path)}: no empty, '.' or '..' components`);
  if (!ALLOWED.some((a) => path.startsWith(a))) throw bad(`maps to ${path}, outside ${ALLOWED.map((a) => a.slice(0, -1)).join(', ')} (the rest of the host is the read-only OS)`);
  if (FORBIDDEN.some((f) => path.startsWith(f))) throw bad(`maps to ${path}, which is atomhost's own state`);
}

/** Atomic's _do_rename_path: each leading part of the path is looked up in renameFiles, in turn. */
function renamePath(path: string, rename: Record<string, string>): string {
  let out = '';
  for (const part of path.split('/').slice(1)) out = rename[`${out}/${part}`] ?? `${out}/${part}`;
  return out;
}

/**
 * Reads a checkout's /exports/hostfs into what the container will own on the host. Only
 * directories and regular files: a symlink (which could point anywhere on the host) or a
 * device is refused. Directories are owned when they are empty in the image (Atomic made
 * only those) or when a rename puts a file in a directory of its own (/etc/etcd1).
 */
export async function collectHostFiles(exportsDir: string, manifest: HostfsManifest, values: Record<string, string>, image: string, store: ContentStore): Promise<Record<string, HostFileSpec>> {
  const root = join(exportsDir, 'hostfs');
  const st = await lstat(root).catch(() => null);
  if (!st) return {};
  if (!st.isDirectory()) throw new UnsafeHostFileError(image, '/', 'is not a directory');
  const rename: Record<string, string> = {};
  for (const [from, to] of Object.entries(manifest.renameFiles ?? {})) {
    if (typeof to !== 'string') throw new UnsafeHostFileError(image, from, 'has a renameFiles value that is not a string');
    const target = renderTemplate(to, values, `${image}:/exports/manifest.json renameFiles[${JSON.stringify(from)}]`, 'lines');
    checkHostPath(target, image, from);
    rename[from] = target;
  }
  const templates = new Set(manifest.installedFilesTemplate ?? []);
  const out: Record<string, HostFileSpec> = {};
  let count = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const n of names) {
      if (++count > MAX_ENTRIES) throw new UnsafeHostFileError(image, rel || '/', `has more than ${MAX_ENTRIES} entries`);
      const src = `${rel}/${n}`;
      const dest = renamePath(src, rename);
      const s = await lstat(join(root, src));
      if (s.isDirectory()) {
        if ((await readdir(join(root, src))).length === 0) {
          checkHostPath(dest, image, src);
          out[dest] = { type: 'dir', mode: s.mode & 0o777 };
        } else await walk(src);
        continue;
      }
      if (!s.isFile()) throw new UnsafeHostFileError(image, src, s.isSymbolicLink() ? 'is a symlink (only files and directories are installed on the host)' : 'is not a regular file');
      checkHostPath(dest, image, src);
      let content: string | Buffer = await readFile(join(root, src));
      if (templates.has(dest)) content = renderTemplate(content.toString('utf8'), values, `${image}:/exports/hostfs${src}`, 'lines');
      // setuid/setgid bits never reach the host.
      out[dest] = { type: 'file', sha256: await store.put(content), mode: s.mode & 0o777 };
      const parent = posix.dirname(dest);
      if (parent !== renamePath(posix.dirname(src), rename) && !out[parent]) out[parent] = { type: 'dir', mode: 0o755 };
    }
  };
  await walk('');
  return out;
}

interface Owner {
  container: string;
  spec: HostFileSpec;
}

function owners(containers: Record<string, ContainerSpec>): Map<string, Owner> {
  const m = new Map<string, Owner>();
  for (const c of Object.values(containers)) for (const [p, spec] of Object.entries(c.hostFiles ?? {})) if (!m.has(p)) m.set(p, { container: c.name, spec });
  return m;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Where `path` lands under `root`, following the host's own symlinks (/usr/local →
 * /var/usrlocal on an OSTree deployment) only while they stay in a place hostfs may write.
 */
async function resolveOnHost(root: string, path: string, container: string): Promise<string> {
  const parts = path.split('/').slice(1);
  let cur = root;
  for (const [i, part] of parts.entries()) {
    const next = join(cur, part);
    const s = await lstat(next).catch(() => null);
    if (!s) return join(next, ...parts.slice(i + 1));
    if (i === parts.length - 1) return next;
    if (s.isSymbolicLink()) {
      const real = await realpath(next).catch(() => null);
      const rel = real && (root === '/' ? real : real.startsWith(`${root}/`) ? real.slice(root.length) : null);
      if (!rel || !ALLOWED.some((a) => `${rel}/`.startsWith(a)) || FORBIDDEN.some((f) => `${rel}/`.startsWith(f))) {
        throw new HostFileConflictError(container, path, `${join('/', ...parts.slice(0, i + 1))} is a symlink to ${real ?? 'nowhere'}, outside the places hostfs may write`);
      }
      cur = join(root, rel);
    } else if (!s.isDirectory()) throw new HostFileConflictError(container, path, `${join('/', ...parts.slice(0, i + 1))} is not a directory`);
    else cur = next;
  }
  return cur;
}

export interface HostFilesPlan {
  write: { path: string; at: string; spec: HostFileSpec; container: string }[];
  remove: { path: string; at: string; spec: HostFileSpec }[];
  warnings: string[];
}

/**
 * What going from `from` to `to` does to the host's files, refusing (HostFileConflictError)
 * a file that exists and that no container of `from` owns, one that two containers want,
 * and one on a path atomhost writes a unit to. Not strict (applying a revision at boot or
 * a fallback), a file on the host that is not owned is kept with a warning instead.
 */
export async function planHostFiles(root: string, from: Revision | null, to: Revision, opts: { strict: boolean }): Promise<HostFilesPlan> {
  const had = owners(from?.containers ?? {});
  const unitPaths = new Set(Object.values(to.units).map((u) => u.path));
  const plan: HostFilesPlan = { write: [], remove: [], warnings: [] };
  const wanted = new Map<string, Owner>();
  for (const c of Object.values(to.containers)) {
    for (const [p, spec] of Object.entries(c.hostFiles ?? {})) {
      // Checked when the image was read; checked again here since a record is a file on disk.
      checkHostPath(p, `container ${c.name}`, p);
      const other = wanted.get(p);
      if (other && (other.spec.type === 'file' || spec.type === 'file')) throw new HostFileConflictError(c.name, p, `the container ${other.container} installs it too`);
      if (unitPaths.has(p)) throw new HostFileConflictError(c.name, p, 'atomhost writes a unit there');
      wanted.set(p, { container: c.name, spec });
    }
  }
  for (const [p, w] of wanted) {
    const at = await resolveOnHost(root, p, w.container);
    const s = await lstat(at).catch(() => null);
    const prior = had.get(p);
    if (w.spec.type === 'dir') {
      if (s && !s.isDirectory()) throw new HostFileConflictError(w.container, p, 'it exists and is not a directory');
      if (!s) plan.write.push({ path: p, at, spec: w.spec, container: w.container });
      continue;
    }
    if (!s) {
      plan.write.push({ path: p, at, spec: w.spec, container: w.container });
      continue;
    }
    if (!s.isFile()) throw new HostFileConflictError(w.container, p, `it exists and is ${s.isSymbolicLink() ? 'a symlink' : s.isDirectory() ? 'a directory' : 'not a regular file'}`);
    const onDisk = sha256(await readFile(at));
    if (onDisk === w.spec.sha256) continue;
    if (prior?.spec.type === 'file' && prior.container === w.container) {
      // Changed by hand since atomhost installed it: the user's file stays.
      if (onDisk !== prior.spec.sha256) plan.warnings.push(`${p} was changed since ${w.container} installed it: kept as it is`);
      else plan.write.push({ path: p, at, spec: w.spec, container: w.container });
      continue;
    }
    const conflict = new HostFileConflictError(w.container, p, prior ? `it belongs to the container ${prior.container}` : 'it exists and atomhost did not install it for this container');
    if (opts.strict) throw conflict;
    plan.warnings.push(conflict.message);
  }
  for (const [p, h] of had) {
    if (wanted.has(p)) continue;
    const at = await resolveOnHost(root, p, h.container).catch(() => null);
    if (!at) continue;
    const s = await lstat(at).catch(() => null);
    if (!s) continue;
    if (h.spec.type === 'file') {
      if (!s.isFile() || sha256(await readFile(at)) !== h.spec.sha256) {
        plan.warnings.push(`${p} was changed since ${h.container} installed it: left in place`);
        continue;
      }
    } else if (!s.isDirectory()) continue;
    plan.remove.push({ path: p, at, spec: h.spec });
  }
  return plan;
}

/** Carries a plan out: files removed (then the directories they leave empty), directories made, files written. */
export async function applyHostFiles(plan: HostFilesPlan, store: ContentStore): Promise<void> {
  const depth = (p: string) => p.split('/').length;
  for (const r of plan.remove.filter((x) => x.spec.type === 'file')) await unlink(r.at).catch(() => {});
  // Deepest first; a directory something else put files in stays.
  for (const r of plan.remove.filter((x) => x.spec.type === 'dir').sort((a, b) => depth(b.path) - depth(a.path))) await rmdir(r.at).catch(() => {});
  for (const w of plan.write.filter((x) => x.spec.type === 'dir').sort((a, b) => depth(a.path) - depth(b.path))) await mkdir(w.at, { recursive: true, mode: w.spec.mode });
  for (const w of plan.write) {
    if (w.spec.type !== 'file') continue;
    await atomicWriteFile(w.at, await store.getBytes(w.spec.sha256), { mode: w.spec.mode });
  }
}
