// The stack manifest: what a whole-stack release is (the OS by refspec/version/commit,
// the system containers by reference and digest with their values and roles). A host
// that follows a stack source upgrades to the manifest's stack as one revision.
import type { HealthProbe } from './revision.js';
import { AtomhostError } from './errors.js';

export const STACK_ROLES = ['network', 'runtime', 'engine', 'kubelet', 'other'] as const;
export type StackRole = (typeof STACK_ROLES)[number];

export interface StackContainer {
  name: string;
  image: string;
  /** Pinned manifest digest; without it the tag is resolved at upgrade time. */
  digest?: string;
  role: StackRole;
  values: Record<string, string>;
  /** What the health gate checks beyond the unit: `{ http: URL }` or `{ command: [argv] }`. */
  probe?: HealthProbe;
}

/** A unit the OS ships, named by the stack (it must exist in the OS the stack deploys). */
export interface StackHostUnit {
  name: string;
  role: StackRole;
  probe?: HealthProbe;
}

export interface StackManifest {
  name: string;
  version: string;
  units: StackHostUnit[];
  /** kargs: made present (KEY=VALUE replaces the key's value); kargsDelete: removed. Never a replacement of the whole line. */
  os: { refspec?: string; version?: string; checksum?: string; kargs?: string[]; kargsDelete?: string[] };
  containers: StackContainer[];
}

/** Stack metadata key on an OS commit (`ostree commit --add-metadata-string=atomhost.stack=…`). */
export const STACK_COMMIT_KEY = 'atomhost.stack';

export class StackManifestError extends AtomhostError {
  constructor(source: string, problems: string[]) {
    super('AH_ERR_INVALID_ARGUMENT', `stack manifest ${source}: ${problems.join('; ')}`, { details: { source, problems } });
    this.name = 'StackManifestError';
  }
}

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** Service unit names (instances like foo@bar.service included); no escapes, no paths. */
const HOST_UNIT_RE = /^[A-Za-z0-9:_.-]+(@[A-Za-z0-9:_.-]*)?\.service$/;

/** Parses and validates a manifest; every problem is reported with its field path. */
export async function parseStackManifest(text: string, source: string): Promise<StackManifest> {
  // Imported when a manifest is parsed, not with this module: the roles below are imported by
  // every host verb (through core/values.ts), which would otherwise all load the YAML parser.
  // A dynamic import (not a runtime require) so that the bundles carry it as a chunk.
  const { parseYaml } = await import('./yaml-text.js');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new StackManifestError(source, [`not YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const problems: string[] = [];
  const obj = (v: unknown, path: string): Record<string, unknown> => {
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    if (v !== undefined) problems.push(`${path} must be a mapping`);
    return {};
  };
  const str = (v: unknown, path: string, required = false): string | undefined => {
    if (v === undefined || v === null) {
      if (required) problems.push(`${path} is required`);
      return undefined;
    }
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string' || v === '') {
      problems.push(`${path} must be a non-empty string`);
      return undefined;
    }
    return v;
  };
  const root = obj(doc, '(document)');
  if (root.kind !== undefined && root.kind !== 'Stack') problems.push(`kind must be Stack, not ${JSON.stringify(root.kind)}`);
  const meta = obj(root.metadata, 'metadata');
  const name = str(meta.name, 'metadata.name') ?? 'stack';
  const version = str(meta.version, 'metadata.version', true) ?? '';
  const os = obj(root.os, 'os');
  const osOut: StackManifest['os'] = {};
  osOut.refspec = str(os.refspec, 'os.refspec');
  osOut.version = str(os.version, 'os.version');
  osOut.checksum = str(os.checksum, 'os.checksum');
  if (osOut.checksum && !/^[0-9a-f]{64}$/.test(osOut.checksum)) problems.push('os.checksum must be 64 hex characters');
  if (os.kargs !== undefined) {
    if (!Array.isArray(os.kargs) || os.kargs.some((k) => typeof k !== 'string' || /\s/.test(k))) problems.push('os.kargs must be a list of kernel arguments without spaces');
    else osOut.kargs = os.kargs as string[];
  }
  if (os.kargsDelete !== undefined) {
    if (!Array.isArray(os.kargsDelete) || os.kargsDelete.some((k) => typeof k !== 'string' || !k || /\s/.test(k))) problems.push('os.kargsDelete must be a list of kernel arguments (KEY or KEY=VALUE) without spaces');
    else if (os.kargsDelete.some((k) => /^(root|ostree)(=|$)/.test(k as string))) problems.push('os.kargsDelete may not remove root= or ostree=: the host would not boot');
    else osOut.kargsDelete = os.kargsDelete as string[];
  }
  const containers: StackContainer[] = [];
  if (root.containers !== undefined && !Array.isArray(root.containers)) problems.push('containers must be a list');
  const seen = new Set<string>();
  const seenUnits = new Set<string>();
  const probeOf = (v: unknown, path: string): HealthProbe | undefined => {
    if (v === undefined) return undefined;
    const pr = obj(v, `${path}.probe`);
    if (typeof pr.http === 'string' && /^https?:\/\/\S+$/.test(pr.http)) return { http: pr.http };
    if (Array.isArray(pr.command) && pr.command.length && pr.command.every((x) => typeof x === 'string')) return { command: pr.command as string[] };
    problems.push(`${path}.probe must be { http: "http(s)://…" } or { command: [program, args…] }`);
    return undefined;
  };
  for (const [i, raw] of ((Array.isArray(root.containers) ? root.containers : []) as unknown[]).entries()) {
    const path = `containers[${i}]`;
    const c = obj(raw, path);
    const cname = str(c.name, `${path}.name`, true);
    if (cname && !NAME_RE.test(cname)) problems.push(`${path}.name ${JSON.stringify(cname)} must match ${NAME_RE}`);
    if (cname && seen.has(cname)) problems.push(`${path}.name ${cname} is listed twice`);
    if (cname) seen.add(cname);
    const image = str(c.image, `${path}.image`, true);
    const digest = str(c.digest, `${path}.digest`);
    if (digest && !DIGEST_RE.test(digest)) problems.push(`${path}.digest must be sha256:<64 hex>`);
    const role = (str(c.role, `${path}.role`) ?? 'other') as StackRole;
    if (!STACK_ROLES.includes(role)) problems.push(`${path}.role must be one of ${STACK_ROLES.join(', ')}`);
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(c.values, `${path}.values`))) {
      if (typeof v === 'object' && v !== null) problems.push(`${path}.values.${k} must be a scalar`);
      else values[k] = String(v);
    }
    const probe = probeOf(c.probe, path);
    if (cname && image) containers.push({ name: cname, image, digest, role, values, ...(probe ? { probe } : {}) });
  }
  const units: StackHostUnit[] = [];
  if (root.units !== undefined && !Array.isArray(root.units)) problems.push('units must be a list');
  for (const [i, raw] of ((Array.isArray(root.units) ? root.units : []) as unknown[]).entries()) {
    const path = `units[${i}]`;
    const u = obj(raw, path);
    const uname = str(u.name, `${path}.name`, true);
    if (uname && !HOST_UNIT_RE.test(uname)) problems.push(`${path}.name ${JSON.stringify(uname)} must be a service unit name (NAME.service)`);
    else if (uname && /^atomhost/.test(uname)) problems.push(`${path}.name ${uname}: atomhost's own units are not part of a stack`);
    else if (uname && (seenUnits.has(uname) || seen.has(uname.replace(/\.service$/, '')))) problems.push(`${path}.name ${uname} is listed twice (or is a container's unit)`);
    if (uname) seenUnits.add(uname);
    const role = (str(u.role, `${path}.role`, true) ?? 'other') as StackRole;
    if (!STACK_ROLES.includes(role)) problems.push(`${path}.role must be one of ${STACK_ROLES.join(', ')}`);
    for (const k of Object.keys(u)) if (!['name', 'role', 'probe'].includes(k)) problems.push(`${path}.${k} is not a field of a host unit (name, role, probe)`);
    const probe = probeOf(u.probe, path);
    if (uname && HOST_UNIT_RE.test(uname)) units.push({ name: uname, role, ...(probe ? { probe } : {}) });
  }
  if (problems.length) throw new StackManifestError(source, problems);
  return { name, version, os: osOut, containers, units };
}

/** Refuses a stack source that could be changed on the way (plain http). */
export function checkStackSource(source: string): void {
  if (/^http:\/\//i.test(source)) {
    throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `stack source ${source}: plain http is refused (a manifest chooses what runs as root); serve it over https, or ship it in the OS commit's metadata and follow "commit"`, { details: { field: 'source', source } });
  }
}

/** Roles start in this order and stop in reverse: network → runtime → engine → kubelet. */
export function roleOrder(role: StackRole | string | undefined): number {
  const i = STACK_ROLES.indexOf((role ?? 'other') as StackRole);
  return i < 0 ? STACK_ROLES.length : i;
}
