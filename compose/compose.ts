// `atomhost compose`: a treefile → mmdebstrap → the OSTree layout → a versioned commit.
//
// Two caches keep it fast. The Debian root (mmdebstrap with the kernel and a dracut
// initramfs that carries Debian's ostree module) is a tarball keyed by what goes into it
// (suite, mirror, packages): about four minutes the first time, seconds after. The
// treefile's files and units, atomhost itself and the OSTree layout are applied on a fresh
// extraction each time, then committed with a fixed timestamp, so the same inputs give the
// same content checksum.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtomhostError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { noProgress, task, type ProgressSink } from '../core/progress.js';
import type { Treefile } from './treefile.js';

/** What every composed OS needs to boot from OSTree; a treefile lists only what it adds. */
export const BASE_PACKAGES = [
  'systemd-sysv', 'dbus', 'udev', 'linux-image-amd64', 'dracut', 'ostree', 'ostree-boot',
  'grub-pc-bin', 'grub2-common', 'e2fsprogs', 'xfsprogs', 'kmod', 'polkitd', 'libpam-systemd',
  'iproute2', 'procps', 'less', 'ca-certificates',
];
/** Bumped when the way the base root is made changes, so old caches are not reused. */
const BASE_RECIPE = 3;
export const DEFAULT_CACHE = '/var/cache/atomhost/compose';
const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Fixed commit time unless SOURCE_DATE_EPOCH says otherwise (reproducible checksums). */
const EPOCH = Number(process.env.SOURCE_DATE_EPOCH ?? 1_700_000_000);

export class ComposeError extends AtomhostError {
  constructor(step: string, detail: string, cause?: unknown) {
    super('AH_ERR_FAILED', `compose: ${step}: ${detail}`, { cause, details: { step } });
    this.name = 'ComposeError';
  }
}

async function sh(step: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, { env: env ? { ...process.env, ...env } : undefined });
  if (r.exitCode !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-8).join('\n');
    throw new ComposeError(step, `${cmd} exited with ${r.exitCode}\n${tail}`);
  }
  return r.stdout;
}

export function baseKey(tf: Pick<Treefile, 'suite' | 'mirror' | 'packages'>): string {
  const packages = [...new Set([...BASE_PACKAGES, ...tf.packages])].sort();
  return createHash('sha256').update(JSON.stringify({ recipe: BASE_RECIPE, suite: tf.suite, mirror: tf.mirror, packages })).digest('hex').slice(0, 16);
}

/** The cached Debian root as a tarball (made by mmdebstrap when missing). */
export async function ensureBase(tf: Treefile, cache: string, progress: ProgressSink = noProgress): Promise<string> {
  const key = baseKey(tf);
  const tarball = join(cache, `base-${tf.suite}-${key}.tar`);
  if (existsSync(tarball)) return tarball;
  await mkdir(cache, { recursive: true });
  const packages = [...new Set([...BASE_PACKAGES, ...tf.packages])].sort();
  const partial = `${tarball}.partial`;
  await task(progress, `Building the Debian ${tf.suite} root (mmdebstrap, ${packages.length} packages; cached as ${tarball})`, async () => {
    // dracut runs from the kernel's postinst: make it generic (not host-only) and give it
    // the ostree module, so that this one run makes the initramfs an OSTree boot needs.
    const dracutConf = 'hostonly="no"\nadd_dracutmodules+=" ostree systemd "\ncompress="gzip"\n';
    await sh('mmdebstrap', 'mmdebstrap', [
      '--quiet', '--mode=root', '--variant=apt', '--format=tar',
      `--include=${packages.join(',')}`,
      `--setup-hook=mkdir -p "$1/etc/dracut.conf.d" && printf '%s' '${dracutConf}' > "$1/etc/dracut.conf.d/10-atomhost.conf"`,
      // No recommends keeps the image small; apt's caches and lists are not part of an OS.
      '--aptopt=APT::Install-Recommends "false"',
      '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
      tf.suite, partial, tf.mirror,
    ], { SOURCE_DATE_EPOCH: String(EPOCH) });
    await rename(partial, tarball);
  });
  return tarball;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

/** Writes the treefile's files and enables/disables its units, in the still-Debian layout. */
async function applyTreefile(root: string, tf: Treefile): Promise<void> {
  for (const [p, e] of Object.entries(tf.files)) {
    const dst = join(root, p);
    await mkdir(dirname(dst), { recursive: true });
    await writeFile(dst, e.content);
    await chmod(dst, e.mode);
  }
  const osRelease = join(root, 'usr/lib/os-release');
  const base = (await readFile(osRelease, 'utf8')).split('\n').filter((l) => !/^(VERSION_ID|OSTREE_VERSION|IMAGE_VERSION|VARIANT_ID)=/.test(l) && l);
  await rm(osRelease);
  await writeFile(osRelease, `${[...base, `VERSION_ID=${tf.version}`, `OSTREE_VERSION=${tf.version}`, `VARIANT_ID=${tf.osname}`].join('\n')}\n`);
  // grub-mkconfig (run by ostree on every deployment of a GRUB host) needs /etc/default/grub,
  // which only grub-pc's maintainer script writes: ship Debian's default.
  const defaultGrub = join(root, 'etc/default/grub');
  if (!existsSync(defaultGrub) && existsSync(join(root, 'usr/share/grub/default/grub'))) await copyFile(join(root, 'usr/share/grub/default/grub'), defaultGrub);
  if (tf.units.enable.length) await sh('enabling units', 'systemctl', [`--root=${root}`, 'enable', ...tf.units.enable]);
  if (tf.units.disable.length) await sh('disabling units', 'systemctl', [`--root=${root}`, 'disable', ...tf.units.disable]);
}

/** Libraries `node` needs, found in the new root (a copied runtime must run there). */
async function checkNodeLibraries(root: string, node: string): Promise<void> {
  const out = await sh('checking the Node.js runtime', 'ldd', [node]);
  const missing: string[] = [];
  for (const m of out.matchAll(/=>\s+(\/\S+)/g)) {
    const lib = m[1];
    const name = lib.split('/').pop()!;
    const candidates = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib', 'lib'].map((d) => join(root, d, name));
    if (!(await Promise.all(candidates.map(exists))).some(Boolean)) missing.push(name);
  }
  if (missing.length) throw new ComposeError('embedding Node.js', `${node} needs ${missing.join(', ')}, which the composed root does not have (add the packages that ship them)`);
}

/**
 * What atomhost needs at run time, relative to the checkout (packaging/runtime-files.mjs, as
 * the Debian package): the bundles dist/bin/atomhost{,d}.js with their chunks and the addon,
 * or (modules) the npm packages the bundles leave external.
 */
async function runtimeFiles(modules: boolean): Promise<string[]> {
  const out = await sh('listing atomhost\'s runtime files', process.execPath, [join(PROJECT, 'packaging/runtime-files.mjs'), ...(modules ? ['--modules'] : [])]);
  return out.split('\n').filter(Boolean);
}

/**
 * atomhost itself: a Node.js 20 runtime (this machine's own `node`: no download, and the
 * same build that ran the tests), the bundles, the npm modules they leave external and the
 * addon, under /usr/lib/atomhost; the units, D-Bus and polkit files where a package puts them.
 */
async function embedAtomhost(root: string): Promise<void> {
  const lib = join(root, 'usr/lib/atomhost');
  await mkdir(lib, { recursive: true });
  await checkNodeLibraries(root, process.execPath);
  await copyFile(process.execPath, join(lib, 'node'));
  await chmod(join(lib, 'node'), 0o755);
  await copyFile(join(PROJECT, 'package.json'), join(lib, 'package.json'));
  for (const f of await runtimeFiles(false)) {
    await mkdir(dirname(join(lib, f)), { recursive: true });
    await copyFile(join(PROJECT, f), join(lib, f));
  }
  for (const m of await runtimeFiles(true)) {
    await mkdir(dirname(join(lib, m)), { recursive: true });
    await sh('copying atomhost', 'cp', ['-a', join(PROJECT, m), join(lib, m)]);
  }
  // atomhostd with a 1 MiB young generation (docs/benchmarks.md, atomhostd).
  for (const [bin, flags] of [['atomhost', ''], ['atomhostd', '--max-semi-space-size=1 ']]) {
    const p = join(root, 'usr/bin', bin);
    await writeFile(p, `#!/bin/sh\nexec /usr/lib/atomhost/node ${flags}/usr/lib/atomhost/dist/bin/${bin}.js "$@"\n`);
    await chmod(p, 0o755);
  }
  // Units as a package installs them; they name the binaries under /usr/bin (not /usr/local).
  const units = join(PROJECT, 'units');
  const sysd = join(root, 'usr/lib/systemd/system');
  for (const f of await readdir(units)) {
    const text = (await readFile(join(units, f), 'utf8')).replaceAll('/usr/local/bin/', '/usr/bin/');
    let dst: string;
    if (/\.(service|slice|target)$/.test(f) && !f.endsWith('.dbus-service')) dst = join(sysd, f);
    else if (f.endsWith('.dbus-service')) dst = join(root, 'usr/share/dbus-1/system-services', f.replace('.dbus-service', '.service'));
    else if (f.endsWith('.conf')) dst = join(root, 'usr/share/dbus-1/system.d', f);
    else if (f.endsWith('.policy')) dst = join(root, 'usr/share/polkit-1/actions', f);
    else continue;
    await mkdir(dirname(dst), { recursive: true });
    await writeFile(dst, text);
  }
  await sh('enabling atomhost units', 'systemctl', [`--root=${root}`, 'enable', 'atomhost-reconcile.service', 'atomhost-health.service']);
}

/**
 * The OSTree layout (the layout ostree-prepare-root boots): kernel and initramfs under
 * /usr/lib/modules/KVER, /etc as /usr/etc, an empty /var made by tmpfiles at boot, the
 * usual links into /var, and an empty /sysroot.
 */
async function ostreeLayout(root: string): Promise<string> {
  const modules = join(root, 'usr/lib/modules');
  const kvers = (await readdir(modules)).filter((k) => existsSync(join(root, 'boot', `vmlinuz-${k}`)));
  if (kvers.length !== 1) throw new ComposeError('OSTree layout', `expected one kernel in /boot, found ${kvers.length} (${kvers.join(', ')})`);
  const kver = kvers[0];
  const initrd = join(root, 'boot', `initrd.img-${kver}`);
  if (!existsSync(initrd)) throw new ComposeError('OSTree layout', `no initramfs /boot/initrd.img-${kver}: dracut did not run in the root`);
  await rename(join(root, 'boot', `vmlinuz-${kver}`), join(modules, kver, 'vmlinuz'));
  await rename(initrd, join(modules, kver, 'initramfs.img'));
  await emptyDir(join(root, 'boot'));
  // dpkg's database lives in /var, which a deployment does not carry: keep it in /usr so
  // that the installed packages of a deployment stay known (as other OSTree Debian builds do).
  if (existsSync(join(root, 'var/lib/dpkg'))) {
    await mkdir(join(root, 'usr/share/dpkg'), { recursive: true });
    await rename(join(root, 'var/lib/dpkg'), join(root, 'usr/share/dpkg/database'));
  }
  await writeFile(join(root, 'etc/machine-id'), '');
  await rm(join(root, 'etc/hostname'), { force: true });
  await rename(join(root, 'etc'), join(root, 'usr/etc'));
  for (const d of ['var', 'dev', 'run', 'tmp', 'proc', 'sys']) await emptyDir(join(root, d));
  const links: [string, string][] = [
    ['home', 'var/home'], ['opt', 'var/opt'], ['srv', 'var/srv'], ['mnt', 'var/mnt'], ['media', 'run/media'],
    ['root', 'var/roothome'], ['usr/local', '../var/usrlocal'], ['ostree', 'sysroot/ostree'],
  ];
  for (const [name, target] of links) {
    await rm(join(root, name), { recursive: true, force: true });
    await symlink(target, join(root, name));
  }
  await mkdir(join(root, 'sysroot'), { recursive: true });
  await writeFile(
    join(root, 'usr/lib/tmpfiles.d/atomhost-ostree.conf'),
    ['d /var/home 0755 root root -', 'd /var/opt 0755 root root -', 'd /var/srv 0755 root root -', 'd /var/mnt 0755 root root -',
      'd /var/roothome 0700 root root -', 'd /var/usrlocal 0755 root root -', 'd /var/usrlocal/bin 0755 root root -', 'd /var/lib/atomhost 0700 root root -', 'd /run/media 0755 root root -', ''].join('\n'),
  );
  return kver;
}

async function emptyDir(dir: string): Promise<void> {
  if (!(await exists(dir))) return mkdir(dir, { recursive: true }).then(() => undefined);
  if ((await lstat(dir)).isSymbolicLink()) {
    await rm(dir);
    await mkdir(dir);
    return;
  }
  for (const e of await readdir(dir)) await rm(join(dir, e), { recursive: true, force: true });
}

export interface ComposeResult {
  ref: string;
  version: string;
  commit: string;
  /** OSTree's content checksum: equal for equal trees, whatever the commit time or parent. */
  contentChecksum: string;
  kernel: string;
  base: string;
}

/** Composes the treefile into `repo` (an archive repository, made if missing). */
export async function compose(tf: Treefile, repo: string, opts: { cache?: string; progress?: ProgressSink; workdir?: string } = {}): Promise<ComposeResult> {
  const progress = opts.progress ?? noProgress;
  const cache = opts.cache ?? DEFAULT_CACHE;
  if (!existsSync(join(repo, 'config'))) await sh('making the repository', 'ostree', ['init', `--repo=${repo}`, '--mode=archive']);
  const base = await ensureBase(tf, cache, progress);
  await mkdir(opts.workdir ?? '/var/tmp', { recursive: true });
  const work = await mkdtemp(join(opts.workdir ?? '/var/tmp', 'atomhost-compose-'));
  const root = join(work, 'root');
  try {
    await mkdir(root);
    await task(progress, 'Unpacking the root', () => sh('unpacking the root', 'tar', ['-xpf', base, '-C', root, '--numeric-owner', '--xattrs', '--xattrs-include=*']));
    await task(progress, `Applying ${tf.source}`, () => applyTreefile(root, tf));
    if (tf.atomhost) await task(progress, 'Embedding atomhost and its Node.js runtime', () => embedAtomhost(root));
    const kver = await task(progress, 'Laying the tree out for OSTree', () => ostreeLayout(root));
    const meta = ['--add-metadata-string=version=' + tf.version, `--add-metadata-string=atomhost.treefile=${tf.source.split('/').pop()}`];
    if (tf.kargs.length) meta.push(`--add-metadata-string=atomhost.kargs=${tf.kargs.join(' ')}`);
    const commit = (
      await task(progress, `Committing ${tf.ref} ${tf.version}`, () =>
        sh('committing', 'ostree', [`--repo=${repo}`, 'commit', `--branch=${tf.ref}`, `--subject=${tf.osname} ${tf.version}`, `--timestamp=@${EPOCH}`, '--skip-if-unchanged', ...meta, `--tree=dir=${root}`]),
      )
    ).trim();
    const show = await sh('reading the commit', 'ostree', [`--repo=${repo}`, 'show', commit]);
    const contentChecksum = /ContentChecksum:\s+([0-9a-f]{64})/.exec(show)?.[1] ?? '';
    await sh('updating the summary', 'ostree', [`--repo=${repo}`, 'summary', '-u']);
    return { ref: tf.ref, version: tf.version, commit, contentChecksum, kernel: kver, base };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

