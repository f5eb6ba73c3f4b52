// Whole-stack upgrade: a host that follows a stack source (`atomhost stack follow`)
// upgrades the OS and its system containers as one revision. Everything is pulled and
// verified first; only then is one new deployment written. A piece that fails to pull
// or verify changes nothing.
import { stackKargs } from './kargs.js';
import { readFile } from 'node:fs/promises';
import { AtomhostError, InvalidArgumentError, NoUpdateError, NotFoundError } from './errors.js';
import type { ContainerChange, HostUnitChange, TransactionResult, TxContext, UpdatePreview } from './host-api.js';
import { noProgress, pullProgress, task } from './progress.js';
import { revisionIdFromOrigin, splitRefspec, stackSourceFromOrigin, type ContainerSpec, type HealthProbe, type HostUnitSpec, type RevisionContent, type UnitSpec } from './revision.js';
import { checkStackSource, STACK_COMMIT_KEY, parseStackManifest, type StackManifest } from './stack-manifest.js';
import type { Deployment } from '../ostree-bridge/types.js';
import type { Sysroot } from '../ostree-bridge/sysroot.js';
import type { ContainerPort } from './container-port.js';
import type { RevisionStore } from './revision.js';

/**
 * What a stack upgrade needs of the host (LocalHost provides it): a port, not the class, so
 * that local-host.ts can load this module lazily without the two importing each other.
 */
export interface StackHost {
  readonly sysroot: Sysroot;
  readonly revisions: RevisionStore;
  port(): Promise<ContainerPort | null>;
  findVersion(refspec: string, version: string): string | null;
  deployContent(title: string, from: Deployment | null, content: RevisionContent, ctx?: TxContext, guard?: { refuseFailed?: boolean }): Promise<TransactionResult>;
}

interface StackPlan {
  manifest: StackManifest;
  refspec: string;
  checksum: string;
  /** The containers the manifest names, with their resolved digests. */
  wanted: { name: string; image: string; digest: string; values: Record<string, string>; role: string; probe?: HealthProbe }[];
}

/** A manifest chooses images and probe commands that run as root: at most this big, and only over https. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

async function fetchManifest(source: string, signal?: AbortSignal): Promise<string> {
  checkStackSource(source);
  let url = new URL(source);
  for (let hop = 0; ; hop++) {
    const res = await fetch(url, { signal: signal ?? AbortSignal.timeout(30_000), redirect: 'manual' }).catch((err: unknown) => {
      throw new AtomhostError('AH_ERR_REMOTE', `fetching the stack manifest ${source}: ${(err as Error).message}`, { cause: err });
    });
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => {});
      const next = new URL(location, url);
      if (next.protocol !== 'https:') throw new AtomhostError('AH_ERR_REMOTE', `fetching the stack manifest ${source}: redirected to ${next.protocol}//${next.host}, refused (a redirect may not leave https)`);
      if (hop >= 5) throw new AtomhostError('AH_ERR_REMOTE', `fetching the stack manifest ${source}: too many redirects`);
      url = next;
      continue;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      throw new AtomhostError('AH_ERR_REMOTE', `fetching the stack manifest ${source}: HTTP ${res.status}`);
    }
    const tooBig = (n: string) => new AtomhostError('AH_ERR_REMOTE', `the stack manifest ${source} is larger than ${MAX_MANIFEST_BYTES} bytes${n}: refused`, { details: { source, limit: MAX_MANIFEST_BYTES } });
    // Refused before the body is read when the server says how big it is.
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > MAX_MANIFEST_BYTES) {
      await res.body.cancel().catch(() => {});
      throw tooBig(` (Content-Length ${declared})`);
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    try {
      for await (const c of res.body) {
        n += c.length;
        if (n > MAX_MANIFEST_BYTES) throw tooBig('');
        chunks.push(c);
      }
    } catch (err) {
      if (err instanceof AtomhostError) throw err;
      throw new AtomhostError('AH_ERR_REMOTE', `fetching the stack manifest ${source}: the transfer broke off after ${n} bytes (${(err as Error).message})`, { cause: err });
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** Reads the manifest from its source: `commit` (the OS commit's metadata), a file path or file:// URL, or http(s). */
async function loadManifest(host: StackHost, source: string, refspec: string, ctx: TxContext): Promise<StackManifest> {
  let text: string;
  if (source === 'commit') {
    const { remote, ref } = splitRefspec(refspec);
    if (remote) await host.sysroot.pull({ remote, refs: [ref], commitOnly: true, signal: ctx.signal });
    const tip = host.sysroot.resolveRev(refspec);
    if (!tip) throw new NotFoundError(`ref ${refspec} does not exist`, { refspec });
    const meta = host.sysroot.readCommit(tip).metadata[STACK_COMMIT_KEY];
    if (!meta) throw new NotFoundError(`commit ${tip.slice(0, 12)} of ${refspec} carries no ${STACK_COMMIT_KEY} metadata`, { refspec, key: STACK_COMMIT_KEY });
    text = meta;
  } else if (/^https?:\/\//.test(source)) {
    text = await fetchManifest(source, ctx.signal);
  } else {
    const path = source.replace(/^file:\/\//, '');
    text = await readFile(path, 'utf8').catch((err: unknown) => {
      throw new NotFoundError(`cannot read the stack manifest ${path}: ${(err as Error).message}`, { source });
    });
  }
  return parseStackManifest(text, source);
}

async function plan(host: StackHost, def: Deployment, ctx: TxContext, pullOs: boolean): Promise<StackPlan> {
  const progress = ctx.progress ?? noProgress;
  const port = await host.port();
  if (!port) throw new AtomhostError('AH_ERR_UNSUPPORTED', 'this host follows a stack source, but this atomhost has no system-container support loaded');
  const source = stackSourceFromOrigin(def.origin)!;
  const current = (await host.revisions.find(revisionIdFromOrigin(def.origin)))!;
  const manifest = await task(progress, `Reading the stack manifest ${source}`, () => loadManifest(host, source, current.os.refspec, ctx));
  const refspec = manifest.os.refspec ?? current.os.refspec;
  const { remote, ref } = splitRefspec(refspec);
  let checksum = manifest.os.checksum ?? null;
  if (!checksum && manifest.os.version) {
    if (remote) await host.sysroot.pull({ remote, refs: [ref], commitOnly: true, depth: -1, signal: ctx.signal });
    checksum = host.findVersion(refspec, manifest.os.version);
    if (!checksum) throw new NotFoundError(`stack ${manifest.version}: OS version ${manifest.os.version} is not in the history of ${refspec}`, { version: manifest.os.version });
  }
  if (pullOs && remote) {
    await task(progress, `Pulling the OS ${manifest.os.version ?? refspec}`, () =>
      host.sysroot.pull({ remote, refs: [checksum ?? ref], signal: ctx.signal, onProgress: pullProgress(progress) }),
    );
  } else if (!checksum && remote) {
    await host.sysroot.pull({ remote, refs: [ref], commitOnly: true, signal: ctx.signal });
  }
  checksum ??= host.sysroot.resolveRev(refspec);
  if (!checksum) throw new NotFoundError(`ref ${refspec} does not exist`, { refspec });
  const wanted: StackPlan['wanted'] = [];
  for (const c of manifest.containers) {
    const { digest } = await task(progress, `Pulling ${c.name} (${c.image})`, () => port.pull(c.image, { digest: c.digest, signal: ctx.signal, progress }));
    wanted.push({ name: c.name, image: c.image, digest, values: c.values, role: c.role, probe: c.probe });
  }
  return { manifest, refspec, checksum, wanted };
}

/** The stack's host units as a revision records them. */
function hostUnitsOf(manifest: StackManifest): Record<string, HostUnitSpec> {
  return Object.fromEntries(manifest.units.map((u) => [u.name, { role: u.role, ...(u.probe ? { probe: u.probe } : {}) }]));
}

function unitChanges(from: Record<string, HostUnitSpec> = {}, to: Record<string, HostUnitSpec>): HostUnitChange[] {
  const out: HostUnitChange[] = [];
  for (const name of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort()) {
    if (JSON.stringify(from[name] ?? null) !== JSON.stringify(to[name] ?? null)) out.push({ name, from: from[name]?.role ?? null, to: to[name]?.role ?? null });
  }
  return out;
}

/**
 * A host unit the stack names must be shipped by the OS it deploys (or be a local unit in
 * /etc): a stack that names a unit its OS lacks is refused before anything is written.
 */
async function checkHostUnitsShipped(host: StackHost, checksum: string, version: string | null, manifest: StackManifest): Promise<void> {
  // The unit directories of the new commit, read once through libostree (no process per unit).
  const shipped = new Set<string>();
  for (const dir of ['/usr/lib/systemd/system', '/usr/etc/systemd/system']) {
    for (const e of (await host.sysroot.listCommitDir(checksum, dir)) ?? []) shipped.add(e.name);
  }
  const missing = manifest.units.filter((u) => !shipped.has(u.name.replace(/@[^.]*\.service$/, '@.service'))).map((u) => u.name);
  if (missing.length) {
    throw new NotFoundError(`stack ${manifest.name} ${manifest.version}: OS ${version ?? checksum.slice(0, 12)} does not ship ${missing.join(', ')} (looked in /usr/lib/systemd/system and /etc/systemd/system of the new OS)`, { units: missing });
  }
}

function changes(from: Record<string, ContainerSpec>, wanted: StackPlan['wanted']): ContainerChange[] {
  const out: ContainerChange[] = [];
  for (const w of wanted) if (from[w.name]?.digest !== w.digest) out.push({ name: w.name, image: w.image, from: from[w.name]?.digest ?? null, to: w.digest });
  for (const [name, c] of Object.entries(from)) if (c.role && !wanted.some((w) => w.name === name)) out.push({ name, image: c.image, from: c.digest, to: null });
  return out;
}

export async function stackCheck(host: StackHost, opts: { preview: boolean }, ctx: TxContext): Promise<UpdatePreview> {
  const def = host.sysroot.deployments[0];
  const p = await plan(host, def, ctx, opts.preview);
  const current = (await host.revisions.find(revisionIdFromOrigin(def.origin)))!;
  const containers = changes(current.containers, p.wanted);
  const kargs = stackKargs(current.os.kargs, p.manifest.os);
  const osChanged = p.checksum !== def.checksum;
  const commit = host.sysroot.readCommit(p.checksum);
  const units = unitChanges(current.hostUnits, hostUnitsOf(p.manifest));
  return {
    refspec: p.refspec,
    available: osChanged || containers.length > 0 || units.length > 0 || kargs.join(' ') !== current.os.kargs.join(' '),
    from: { checksum: def.checksum, version: current.os.version, revision: current.id },
    to: { checksum: p.checksum, version: commit.version, timestamp: new Date(commit.timestamp * 1000).toISOString() },
    kargs: { from: current.os.kargs, to: kargs },
    files: opts.preview && osChanged ? await host.sysroot.diff(def.checksum, p.checksum) : opts.preview ? { added: [], removed: [], modified: [] } : null,
    containers,
    units,
  };
}

/** Runs under the sysroot lock (called from LocalHost.upgrade). */
export async function stackUpgrade(host: StackHost, def: Deployment, ctx: TxContext): Promise<TransactionResult> {
  const p = await plan(host, def, ctx, true);
  const port = (await host.port())!;
  const current = (await host.revisions.find(revisionIdFromOrigin(def.origin)))!;
  const kargs = stackKargs(current.os.kargs, p.manifest.os);
  const hostUnits = hostUnitsOf(p.manifest);
  if (p.checksum === def.checksum && changes(current.containers, p.wanted).length === 0 && unitChanges(current.hostUnits, hostUnits).length === 0 && kargs.join(' ') === current.os.kargs.join(' ')) {
    throw new NoUpdateError(`no update available: the host already runs stack ${p.manifest.name} ${p.manifest.version}`);
  }
  // Containers that are not part of the stack (installed by hand, no role) stay as they are.
  const containers: Record<string, ContainerSpec> = {};
  const units: Record<string, UnitSpec> = {};
  for (const [name, c] of Object.entries(current.containers)) {
    if (!c.role && !p.wanted.some((w) => w.name === name)) {
      containers[name] = c;
      for (const [u, spec] of Object.entries(current.units)) if (u.startsWith(`${name}.`)) units[u] = spec;
    }
  }
  for (const w of p.wanted) {
    const prepared = await port.prepare(w);
    containers[w.name] = { ...prepared.container, role: w.role, ...(w.probe ? { probe: w.probe } : {}) };
    Object.assign(units, prepared.units);
  }
  if (p.wanted.some((w) => !/^[a-z0-9][a-z0-9_.-]*$/.test(w.name))) throw new InvalidArgumentError('stack container names must be simple names');
  const commit = host.sysroot.readCommit(p.checksum);
  await checkHostUnitsShipped(host, p.checksum, commit.version, p.manifest);
  const content: RevisionContent = {
    os: { osname: def.osname, remote: splitRefspec(p.refspec).remote, refspec: p.refspec, checksum: p.checksum, version: commit.version, kargs },
    containers,
    units,
    ...(Object.keys(hostUnits).length ? { hostUnits } : {}),
    parent: current.id,
  };
  const r = await host.deployContent(`upgrade to stack ${p.manifest.version}`, def, content, ctx, { refuseFailed: true });
  return { ...r, message: `Deployed stack ${p.manifest.name} ${p.manifest.version} (OS ${commit.version ?? p.checksum.slice(0, 12)}, ${p.wanted.length} containers${p.manifest.units.length ? `, ${p.manifest.units.length} host units` : ''}) as revision ${r.revision?.slice(0, 12)}; reboot to use it` };
}
