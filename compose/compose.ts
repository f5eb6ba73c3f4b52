// `atomhost compose`: a treefile → mmdebstrap → the OSTree layout → a versioned commit.
//
// Two caches keep it fast. The Debian root (mmdebstrap with the kernel and a dracut
// initramfs that carries Debian's ostree module) is a tarball keyed by what goes into it
// (suite, mirror, packages): about four minutes the first time, seconds after. The
// treefile's files and units, atomhost itself and the OSTree layout are applied on a fresh
// extraction each time, then committed with a fixed timestamp, so the same inputs give the
// same content checksum.
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** How the package is built (`npm run package`): only in a checkout. */
const PACKAGE_SCRIPT = join(PROJECT, 'scripts/package.sh');
let builtDeb: Promise<string> | undefined;

/**
 * atomhost's Debian package with its own Node.js runtime (scripts/package.sh --with-node:
 * Debian 12's nodejs is 18), built once per process from this checkout into a temporary
 * directory removed at exit. Reproducible, so every compose of a process gets the same file.
 */
export function buildAtomhostDeb(): Promise<string> {
  builtDeb ??= (async () => {
    if (!existsSync(PACKAGE_SCRIPT)) throw new ComposeError('building atomhost\'s package', `${PACKAGE_SCRIPT} is missing (not a checkout): give a package built with scripts/package.sh --with-node as ATOMHOST_COMPOSE_DEB`);
    const dir = await mkdtemp(join(tmpdir(), 'atomhost-compose-deb-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const deb = join(dir, 'atomhost.deb');
    // Uncompressed: it is installed at once and thrown away (xz of the runtime is most of the build).
    await sh('building atomhost\'s Debian package (scripts/package.sh --with-node)', 'bash', [PACKAGE_SCRIPT, '--with-node', deb], { ATOMHOST_DEB_COMPRESSION: 'none' });
    return deb;
  })();
  builtDeb.catch(() => (builtDeb = undefined));
  return builtDeb;
}

/** The package's control fields, checked: atomhost, and carrying its runtime. */
export async function checkAtomhostDeb(deb: string): Promise<void> {
  if (!existsSync(deb)) throw new ComposeError('installing atomhost', `${deb}: no such package file`);
  const fields = await sh('reading the atomhost package', 'dpkg-deb', ['--field', deb, 'Package', 'Depends']);
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(fields)?.[1] ?? '';
  if (field('Package') !== 'atomhost') throw new ComposeError('installing atomhost', `${deb} is the package ${field('Package') || '(none)'}, not atomhost`);
  if (/(^|,\s*)nodejs\b/.test(field('Depends'))) {
    throw new ComposeError('installing atomhost', `${deb} depends on nodejs, which Debian's own (18) does not satisfy: build it with scripts/package.sh --with-node`);
  }
}

/**
 * atomhost itself, installed from its Debian package (the one place that says how atomhost
 * is installed) by the root's own dpkg database: `dpkg --root` unpacks it and runs the
 * maintainer scripts chrooted in the root (they touch systemd only when it runs there, which
 * it does not), so `dpkg -s atomhost` knows it in the composed OS. Then the reconcile and
 * health units, which the package leaves disabled, are enabled: they belong to the image;
 * so is atomhost-updates.path, which starts the D-Bus-activated agent at boot once an
 * update policy exists (after the reboot it must see the gate and give its lock slot back).
 */
async function installAtomhost(root: string, deb: string): Promise<void> {
  await checkAtomhostDeb(deb);
  await sh('installing atomhost (dpkg --root)', 'dpkg', [`--root=${root}`, '--force-unsafe-io', '--install', deb], { DEBIAN_FRONTEND: 'noninteractive' });
  await sh('enabling atomhost units', 'systemctl', [`--root=${root}`, 'enable', 'atomhost-reconcile.service', 'atomhost-health.service', 'atomhost-updates.path']);
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
      // dpkg-query and friends find the database moved above (read-only, as /usr is).
      'L /var/lib/dpkg - - - - /usr/share/dpkg/database',
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

export interface ComposeOptions {
  cache?: string;
  progress?: ProgressSink;
  workdir?: string;
  /**
   * atomhost's package to install (with `atomhost: true`): a .deb made by
   * `scripts/package.sh --with-node`. Default: $ATOMHOST_COMPOSE_DEB, else built from this
   * checkout (once per process).
   */
  atomhostDeb?: string;
}

/** Composes the treefile into `repo` (an archive repository, made if missing). */
export async function compose(tf: Treefile, repo: string, opts: ComposeOptions = {}): Promise<ComposeResult> {
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
    if (tf.atomhost) {
      const deb = opts.atomhostDeb ?? process.env.ATOMHOST_COMPOSE_DEB ?? (await task(progress, 'Building atomhost\'s Debian package with its Node.js runtime', buildAtomhostDeb));
      await task(progress, `Installing atomhost from ${deb.split('/').pop()}`, () => installAtomhost(root, deb));
    }
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

