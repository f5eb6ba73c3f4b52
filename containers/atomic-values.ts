// The template values of a Project Atomic system container, as `atomic install --system`
// set them (projectatomic/atomic Atomic/syscontainers.py, _amend_values), with their
// values on this host. Order, as Atomic's: the user's --set values; the overridable
// directories and capabilities where the user set none; the image's manifest.json
// defaultValues for what is still unset; then the forced ones, which nobody may set.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';

/** Set by atomhost whatever the user or the image says (Atomic's TEMPLATE_FORCED_VARIABLES). */
export const FORCED_VARIABLES = ['DESTDIR', 'NAME', 'EXEC_START', 'EXEC_STOP', 'EXEC_STARTPRE', 'EXEC_STOPPOST', 'HOST_UID', 'HOST_GID', 'IMAGE_ID', 'IMAGE_NAME'] as const;

/** Capability names by number (linux/capability.h), as Atomic's KNOWN_CAPS plus the ones added since. */
const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/**
 * Every capability this kernel knows, as Atomic wrote them: a JSON fragment of quoted
 * names, one a line, for templates such as `"bounding": [ $ALL_PROCESS_CAPABILITIES ]`.
 */
export function allProcessCapabilities(): string {
  let last = CAPS.length - 1;
  try {
    last = Math.min(last, Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()));
  } catch {
    // no /proc (a build host): every name atomhost knows
  }
  return `${CAPS.slice(0, last + 1).map((c) => `"${c}"`).join(',\n')}\n`;
}

export interface AtomicValueInput {
  name: string;
  /** The bundle directory ($DESTDIR; the unit's WorkingDirectory in Atomic's templates). */
  destdir: string;
  image: string;
  imageId: string;
  user: Record<string, string>;
  defaults: Record<string, string>;
  runtime: string;
  /** The four runtime commands, made once the PIDFILE is known. */
  directives: (pidfile: string) => { start: string; stop: string; startPre: string; stopPost: string };
}

export function atomicValues(input: AtomicValueInput): Record<string, string> {
  for (const k of FORCED_VARIABLES) {
    if (k in input.user) throw new InvalidArgumentError(`--set ${k}: atomhost sets $${k} itself (as atomic install --system did); it cannot be given`, { field: 'set', name: k });
  }
  const v: Record<string, string> = { ...input.user };
  v.RUN_DIRECTORY ??= '/run';
  v.PIDFILE ??= `${v.RUN_DIRECTORY}/container-${input.name}.pid`;
  v.CONF_DIRECTORY ??= '/etc';
  v.STATE_DIRECTORY ??= '/var/lib';
  v.ALL_PROCESS_CAPABILITIES ??= allProcessCapabilities();
  v.RUNTIME ??= input.runtime;
  // Atomic's own path, for templates that ran `$ATOMIC …`: here atomhost's CLI.
  v.ATOMIC ??= 'atomhost';
  for (const [k, d] of Object.entries(input.defaults)) if (!(k in v)) v[k] = String(d);
  // Atomic made a random UUID at each install; one derived from the name keeps a container's
  // checkout (named by its values) the same across updates and rollbacks.
  v.UUID ??= uuidFromName(input.name);
  const d = input.directives(v.PIDFILE);
  Object.assign(v, {
    DESTDIR: input.destdir,
    NAME: input.name,
    EXEC_START: d.start,
    EXEC_STOP: d.stop,
    EXEC_STARTPRE: d.startPre,
    EXEC_STOPPOST: d.stopPost,
    HOST_UID: String(process.getuid?.() ?? 0),
    HOST_GID: String(process.getgid?.() ?? 0),
    IMAGE_NAME: input.image,
    IMAGE_ID: input.imageId,
  });
  return v;
}

/**
 * Atomic ran `runc run -d --pid-file $PIDFILE` (a forking unit) when the service template
 * names both $EXEC_STOPPOST and $PIDFILE, and `runc run` in the foreground otherwise.
 */
export function templateUsesPidfile(serviceTemplate: string | null): boolean {
  return serviceTemplate !== null && /\$\{?EXEC_STOPPOST\b/.test(serviceTemplate) && /\$\{?PIDFILE\b/.test(serviceTemplate);
}

function uuidFromName(name: string): string {
  const h = createHash('sha256').update(`atomhost-container:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
