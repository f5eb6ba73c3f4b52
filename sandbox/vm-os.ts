// The OS and the disk image the VM tests and `npm run vm` boot, built once and cached by a
// hash of their inputs (treefiles, atomhost's own runtime files, the kickstart): a fresh
// machine composes it once (about five minutes), later runs reuse it in seconds.
//   node dist/sandbox/vm-os.js        prints the cached OS (composing it when missing)
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose, DEFAULT_CACHE } from '../compose/compose.js';
import { parseTreefile } from '../compose/treefile.js';
import { applyKickstart } from '../kickstart/apply.js';
import { noProgress, type ProgressSink } from '../core/progress.js';
import { serveDirectory } from './http-server.js';
import { atomicWriteFile } from '../core/atomic-write.js';
import { AGENT_SCRIPT, AGENT_UNIT } from './vm.js';

const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OS_DIR = join(PROJECT, 'test', 'vm', 'os');
export const VM_CACHE = process.env.ATOMHOST_VM_CACHE ?? '/var/cache/atomhost/vm';
/** The guest reaches the OS repository here (user networking forward to this machine). */
export const GUEST_REPO_PORT = 8080;

export interface VmOs {
  key: string;
  repo: string;
  stable: { ref: string; v1: string; v2: string };
  broken: { ref: string; commit: string };
}

function hashTree(h: ReturnType<typeof createHash>, dir: string): void {
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) hashTree(h, p);
    else if (!p.endsWith('.map')) h.update(p.slice(PROJECT.length)).update(readFileSync(p));
  }
}

/**
 * One builder at a time: test files may run side by side (scripts/run-tests.mjs), and a
 * second one waits for the first's OS and image rather than composing them again.
 */
async function withCacheLock<T>(fn: () => Promise<T>): Promise<T> {
  await mkdir(VM_CACHE, { recursive: true });
  const lock = join(VM_CACHE, '.build.lock');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let empty = 0; ; ) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await readFile(lock, 'utf8').catch(() => ''));
      // A holder that died leaves its lock behind; an empty file is one being written.
      if ((pid && !alive(pid)) || (!pid && ++empty > 3)) await rm(lock, { force: true });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** A hash of everything the composed OS is made of. */
function osKey(treefiles: string[]): string {
  const h = createHash('sha256');
  for (const f of treefiles) h.update(f).update(readFileSync(f));
  // The bundles the OS runs (dist/bin), what they are made of, and how they are made and copied.
  for (const d of ['bin', 'agent', 'cli', 'core', 'containers', 'systemd', 'ostree-bridge', 'kickstart', 'compose', 'fleet']) hashTree(h, join(PROJECT, 'dist', d));
  // atomhost goes in as its Debian package: how it is built counts too.
  for (const f of ['scripts/bundle.mjs', 'scripts/package.sh']) h.update(readFileSync(join(PROJECT, f)));
  hashTree(h, join(PROJECT, 'packaging'));
  hashTree(h, join(PROJECT, 'units'));
  // The addon by its sources (its binary embeds the build path, which differs between clones).
  for (const f of ['binding.gyp', 'ostree_bridge.cc']) h.update(readFileSync(join(PROJECT, 'ostree-bridge/native', f)));
  h.update(readFileSync(join(PROJECT, 'package-lock.json')));
  return h.digest('hex').slice(0, 16);
}

export function ensureVmOs(progress: ProgressSink = noProgress): Promise<VmOs> {
  return withCacheLock(() => buildVmOs(progress));
}

async function buildVmOs(progress: ProgressSink): Promise<VmOs> {
  const files = ['atomhost-os-1.0.yaml', 'atomhost-os-2.0.yaml', 'atomhost-os-broken.yaml'].map((f) => join(OS_DIR, f));
  // ATOMHOST_VM_REUSE=1 (development only): boot whatever OS is cached, even if atomhost's code changed since.
  const reuse = process.env.ATOMHOST_VM_REUSE === '1' && existsSync(VM_CACHE) ? readdirSync(VM_CACHE).find((e) => /^os-.*\.json$/.test(e)) : undefined;
  if (reuse) return JSON.parse(await readFile(join(VM_CACHE, reuse), 'utf8')) as VmOs;
  const key = osKey(files);
  const state = join(VM_CACHE, `os-${key}.json`);
  if (existsSync(state)) return JSON.parse(await readFile(state, 'utf8')) as VmOs;
  await mkdir(VM_CACHE, { recursive: true });
  // One composed OS is kept: older ones (other inputs) go.
  for (const e of readdirSync(VM_CACHE)) if (/^(repo|os|disk)-/.test(e)) await rm(join(VM_CACHE, e), { recursive: true, force: true });
  const repo = join(VM_CACHE, `repo-${key}`);
  const [t1, t2, tb] = files.map((f) => parseTreefile(f));
  const c1 = await compose(t1, repo, { cache: DEFAULT_CACHE, progress });
  const c2 = await compose(t2, repo, { cache: DEFAULT_CACHE, progress });
  const cb = await compose({ ...tb, ref: 'atomhost-os/x86_64/broken' }, repo, { cache: DEFAULT_CACHE, progress });
  const os: VmOs = { key, repo, stable: { ref: t1.ref, v1: c1.commit, v2: c2.commit }, broken: { ref: 'atomhost-os/x86_64/broken', commit: cb.commit } };
  // 2.0 is composed but not released yet: the installed image gets 1.0, a test releases 2.0.
  await publish(os, 'v1');
  await writeFile(state, JSON.stringify(os, null, 2));
  return os;
}

/** Points the stable ref at 1.0 or 2.0 (what a release engineer does when publishing), and updates the summary. */
export async function publish(os: VmOs, version: 'v1' | 'v2'): Promise<void> {
  await atomicWriteFile(join(os.repo, 'refs', 'heads', os.stable.ref), `${os.stable[version]}\n`);
  const { runOk } = await import('../core/exec.js');
  await runOk('ostree', [`--repo=${os.repo}`, 'summary', '-u']);
}

/**
 * The installed disk (raw, sparse) made by atomhost's kickstart from test/vm/host.ks,
 * with the VM agent added by a second %post. Cached; tests boot copy-on-write overlays.
 */
export function ensureVmImage(os: VmOs, progress: ProgressSink = noProgress): Promise<string> {
  return withCacheLock(() => buildVmImage(os, progress));
}

async function buildVmImage(os: VmOs, progress: ProgressSink): Promise<string> {
  const template = await readFile(join(PROJECT, 'test', 'vm', 'host.ks'), 'utf8');
  const key = createHash('sha256').update(os.key).update(template).update(AGENT_SCRIPT).update(AGENT_UNIT).digest('hex').slice(0, 16);
  const image = join(VM_CACHE, `disk-${key}.img`);
  if (existsSync(image)) return image;
  const reuse = process.env.ATOMHOST_VM_REUSE === '1' ? readdirSync(VM_CACHE).find((e) => /^disk-.*\.img$/.test(e)) : undefined;
  if (reuse) return join(VM_CACHE, reuse);
  await publish(os, 'v1');
  const server = await serveDirectory(os.repo);
  const work = join(VM_CACHE, `ks-${key}`);
  try {
    await mkdir(work, { recursive: true });
    const ks = template.replaceAll('@REPO_URL@', server.url).replaceAll('@GUEST_REPO_URL@', `http://10.0.2.100:${GUEST_REPO_PORT}`) +
      `\n%post --erroronfail\n# The VM test agent: commands over virtio-serial (sandbox/vm.ts).\nmkdir -p /etc/atomhost-vm\ncat > /etc/atomhost-vm/agent.sh <<'AGENT'\n${AGENT_SCRIPT}AGENT\nchmod 0700 /etc/atomhost-vm/agent.sh\ncat > /etc/systemd/system/atomhost-vm-agent.service <<'UNIT'\n${AGENT_UNIT}UNIT\nsystemctl enable atomhost-vm-agent.service\n%end\n`;
    await writeFile(join(work, 'host.ks'), ks);
    // Installed under a temporary name: an interrupted install is never taken for a cached image.
    await applyKickstart(join(work, 'host.ks'), { image: `${image}.partial`, sizeBytes: 6 * 1024 ** 3, progress });
    await rename(`${image}.partial`, image);
  } finally {
    await rm(`${image}.partial`, { force: true });
    await server.close();
    await rm(work, { recursive: true, force: true });
  }
  return image;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { progressView } = await import('../cli/progress-view.js');
  const view = progressView({ json: false, jsonLines: false });
  const os = await ensureVmOs(view.sink);
  const image = process.argv.includes('--image') ? await ensureVmImage(os, view.sink) : null;
  view.done();
  process.stdout.write(`${JSON.stringify({ ...os, image }, null, 2)}\n`);
}
