// Human renderers, kept apart from the data (the JSON is the object itself).
import type { DeploymentStatus, HostStatus, RevisionDiff, TransactionResult, UpdatePreview } from '../core/host-api.js';
import type { UpdatesReport } from '../core/updates/state.js';
import type { TreeDiff } from '../ostree-bridge/types.js';
import type { RevisionPage } from '../core/revision.js';
import { shortId } from '../core/revision-index.js';

export interface StatusView {
  /** More per deployment: full ids and digests, signers' fingerprints, units (`status -v`). */
  verbose?: boolean;
  /** The deployments were cut to the booted one (`status --booted`). */
  bootedOnly?: boolean;
}

export function renderStatus(s: HostStatus, view: StatusView = {}): string {
  const lines: string[] = [];
  if (s.status.transaction) lines.push(`Transaction: ${s.status.transaction.title} (started by ${s.status.transaction.caller} at ${s.status.transaction.started})`);
  else if (s.status.transaction === null) lines.push('State: idle');
  if (s.status.updates) lines.push(renderUpdatesLine(s.status.updates));
  lines.push('Deployments:');
  if (s.status.deployments.length === 0) {
    lines.push(view.bootedOnly ? `  (none booted: ${s.metadata.sysroot} is not the running system)` : '  (none: make the first one with `atomhost rebase REMOTE:REF --os NAME`)');
  }
  for (const d of s.status.deployments) {
    const marks = [d.booted ? 'booted' : '', d.default ? 'default' : '', d.rollback ? 'rollback' : '', d.staged ? 'staged' : '', d.pinned ? 'pinned' : ''].filter(Boolean);
    lines.push(`${d.booted ? '●' : ' '} ${d.index}: ${d.osname} ${d.version ?? '(no version)'}${marks.length ? `  [${marks.join(', ')}]` : ''}`);
    lines.push(`       Refspec: ${d.refspec ?? '(none)'}`);
    lines.push(`        Commit: ${d.checksum}${d.timestamp ? ` (${d.timestamp})` : ''}`);
    if (view.verbose) lines.push(`    Deployment: ${d.osname}/deploy/${d.checksum}.${d.deploySerial}`);
    if (view.verbose && d.signature.signers.length) for (const signer of d.signature.signers) lines.push(`     Signature: ${renderSignerVerbose(signer)}`);
    else lines.push(`     Signature: ${renderSignature(d.signature)}`);
    const rev = d.revision;
    lines.push(`      Revision: ${rev ? `${view.verbose ? rev.id : shortId(rev.id)} (${rev.state})` : '(none; adopted on the next change)'}`);
    if (view.verbose && rev) {
      lines.push(`       Created: ${rev.created}${rev.reason ? ` (${rev.reason})` : ''}`);
      lines.push(`        Parent: ${rev.parent ?? '(none)'}`);
    }
    if (d.kargs.length || view.verbose) lines.push(`   Kernel args: ${d.kargs.join(' ') || '(none)'}`);
    for (const c of Object.values(rev?.containers ?? {})) {
      lines.push(`     Container: ${c.name} ${c.image} ${view.verbose ? c.digest : c.digest.slice(0, 19)}${c.role ? ` (${c.role})` : ''}`);
    }
    if (view.verbose && rev) {
      for (const [name, u] of Object.entries(rev.units)) lines.push(`          Unit: ${name} sha256:${u.sha256} ${u.path}`);
      for (const [name, u] of Object.entries(rev.hostUnits ?? {})) lines.push(`     Host unit: ${name} (${u.role})`);
    }
  }
  return lines.join('\n');
}

/** One signer in full: the whole fingerprint and when it signed (`status -v`). */
function renderSignerVerbose(s: DeploymentStatus['signature']['signers'][number]): string {
  if (s.type === 'ed25519') return s.valid ? `Valid signature by ed25519 key ${s.fingerprint}` : `Invalid ed25519 signature: ${s.problem}`;
  const who = `${s.user ?? 'key'} (fingerprint ${s.fingerprint}, signed ${s.signed})`;
  return s.valid ? `Valid signature by ${who}` : `Invalid signature by ${who}: ${s.problem}`;
}

/** rpm-ostree's GPGSignature line, for every kind of signature atomhost knows. */
export function renderSignature(sig: DeploymentStatus['signature'] | undefined): string {
  if (!sig || sig.state === 'not-verified') return sig?.remote ? `not verified (remote ${sig.remote} checks no signatures)` : 'not verified';
  if (sig.state === 'unsigned') return `unsigned (remote ${sig.remote} requires a signature)`;
  return sig.signers
    .map((s) =>
      s.type === 'ed25519'
        ? s.valid
          ? `Valid signature by ed25519 key ${s.keyId} (remote ${sig.remote})`
          : `Invalid ed25519 signature: ${s.problem}`
        : s.valid
          ? `Valid signature by ${s.user ?? 'key'} (key ${s.keyId})`
          : `Invalid signature by key ${s.keyId}: ${s.problem}`,
    )
    .join('; ');
}

export function renderTreeDiff(files: TreeDiff, indent = '  '): string[] {
  const out: string[] = [];
  for (const f of files.added) out.push(`${indent}A ${f}`);
  for (const f of files.removed) out.push(`${indent}D ${f}`);
  for (const f of files.modified) out.push(`${indent}M ${f}`);
  if (out.length === 0) out.push(`${indent}(no file changes)`);
  return out;
}

export function renderPreview(p: UpdatePreview): string {
  if (!p.available || !p.to) return `No update available on ${p.refspec} (at ${p.from.version ?? p.from.checksum.slice(0, 12)}).`;
  const lines = [
    `Update available on ${p.refspec}:`,
    `  Version: ${p.from.version ?? '?'} → ${p.to.version ?? '?'}`,
    `   Commit: ${p.from.checksum.slice(0, 12)} → ${p.to.checksum.slice(0, 12)}${p.to.timestamp ? ` (${p.to.timestamp})` : ''}`,
  ];
  if (p.kargs.from.join(' ') !== p.kargs.to.join(' ')) lines.push(`  Kernel args: ${p.kargs.from.join(' ') || '(none)'} → ${p.kargs.to.join(' ') || '(none)'}`);
  for (const c of p.containers) lines.push(`  Container ${c.name}: ${c.from?.slice(0, 19) ?? '(new)'} → ${c.to?.slice(0, 19) ?? '(removed)'}`);
  for (const u of p.units ?? []) lines.push(`  Host unit ${u.name}: ${u.from ? `role ${u.from}` : '(not in the stack)'} → ${u.to ? `role ${u.to}` : '(left to the OS)'}`);
  if (p.files) {
    lines.push(`  Files (${p.files.added.length} added, ${p.files.removed.length} removed, ${p.files.modified.length} modified):`);
    lines.push(...renderTreeDiff(p.files, '    '));
  }
  return lines.join('\n');
}

export function renderResult(r: TransactionResult): string {
  return r.message;
}

export function renderRevisions(page: RevisionPage, current: string | null): string {
  const revs = page.revisions;
  if (revs.length === 0) return page.total ? 'No older revisions.' : 'No revisions yet.';
  const more = page.next ? `\n(${revs.length} of ${page.total}; older: atomhost revisions --before ${shortId(page.next)}, or --all)` : '';
  return revs
    .map((r) => `${r.id === current ? '*' : ' '} ${shortId(r.id)}  ${r.created}  ${r.state.padEnd(11)} ${r.os.osname} ${r.os.version ?? r.os.checksum.slice(0, 12)}  containers: ${Object.keys(r.containers).length}${r.parent ? `  parent ${shortId(r.parent)}` : ''}${r.reason ? `  (${r.reason})` : ''}`)
    .join('\n') + more;
}

export function renderRevisionDiff(d: RevisionDiff): string {
  const lines = [`Revision ${shortId(d.from)} → ${shortId(d.to)}`];
  if (d.os.from.checksum !== d.os.to.checksum) {
    lines.push(`  OS: ${d.os.from.version ?? d.os.from.checksum.slice(0, 12)} → ${d.os.to.version ?? d.os.to.checksum.slice(0, 12)}`);
    if (d.os.files) lines.push(...renderTreeDiff(d.os.files, '    '));
    else lines.push('    (file diff unavailable: one of the commits is not in the repository)');
  } else lines.push(`  OS: unchanged (${d.os.to.version ?? d.os.to.checksum.slice(0, 12)})`);
  if (d.kargs.from.join(' ') !== d.kargs.to.join(' ')) lines.push(`  Kernel args: ${d.kargs.from.join(' ') || '(none)'} → ${d.kargs.to.join(' ') || '(none)'}`);
  for (const c of d.containers) lines.push(`  Container ${c.name}: ${c.from ?? '(none)'} → ${c.to ?? '(removed)'}`);
  for (const u of d.units) lines.push(`  Unit ${u.name}: ${u.from?.slice(0, 12) ?? '(none)'} → ${u.to?.slice(0, 12) ?? '(removed)'}`);
  return lines.join('\n');
}

/** One line of the update agent's state, as `atomhost status` shows it. */
export function renderUpdatesLine(u: UpdatesReport): string {
  const target = u.target?.version ?? u.target?.checksum?.slice(0, 12);
  return `Updates: ${u.state}${target && ['available', 'staged', 'waiting', 'rebooting', 'gating'].includes(u.state) ? ` (${target})` : ''}${u.reason ? `: ${u.reason}` : ''}`;
}

/** `atomhost updates status`. */
export function renderUpdates(u: UpdatesReport): string {
  const lines = [renderUpdatesLine(u), `  Strategy: ${u.strategy ?? '(no valid policy)'}${u.source ? `, source ${u.source}` : ''}${u.paused ? ', paused' : ''}`, `  Since: ${u.since}`];
  if (u.target) lines.push(`  Target: ${u.target.version ?? '(no version)'} ${u.target.checksum ?? ''}${u.target.revision ? ` revision ${shortId(u.target.revision)}` : ''}`);
  if (u.lastCheck) lines.push(`  Last check: ${u.lastCheck}`);
  if (u.nextCheck) lines.push(`  Next check: ${u.nextCheck}`);
  if (u.nextWindow) lines.push(`  Next window: ${u.nextWindow}`);
  if (u.deadEnd) lines.push(`  Dead end: ${u.deadEnd}`);
  if (u.lastFailure) lines.push(`  Last failure: ${u.lastFailure}`);
  return `${lines.join('\n')}\n`;
}
