// The kickstart commands atomhost knows: their options (spelled, aliased and defaulted as
// pykickstart's current handlers do where they overlap) and the checks of their values.
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { ProblemKind, SourceRef } from './errors.js';
import { parseOptions, type OptSpec, type OptValue } from './options.js';
import type { FsType, Kickstart, NetworkSpec } from './types.js';
import { VERSIONS, type KsVersion } from './versions.js';

export interface Cmd {
  name: string;
  at: SourceRef;
  /** The kickstart version the file is judged by (validate --version). */
  version: KsVersion;
  args: string[];
  has(dest: string): boolean;
  str(dest: string): string | null;
  int(dest: string): number | null;
  bool(dest: string, dflt: boolean): boolean;
  list(dest: string): string[];
  /** How the option of `dest` was written (for messages), or its canonical spelling. */
  w(dest: string): string;
  err(kind: ProblemKind, message: string, option?: string): void;
  warn(message: string, option?: string): void;
  unsupported(message: string, option?: string): void;
}

interface CommandDef {
  options: OptSpec[];
  /** Allowed positional arguments [min, max] (max -1: any). */
  positionals: [number, number];
  positionalName?: string;
  /**
   * A single command (pykickstart re-parses it: the later line wins, with a warning here);
   * false for commands that add an item each time (network, user, part, ...).
   */
  once: boolean;
  /** Arguments are handed on untouched (auth passes them to authconfig/authselect). */
  passthrough?: boolean;
  handle(c: Cmd, ks: Kickstart): void;
}

const flag = (names: string | string[], dest?: string, konst?: string): OptSpec => {
  const n = Array.isArray(names) ? names : [names];
  return { names: n, type: 'flag', dest: dest ?? destOf(n[0]), const: konst };
};
const str = (names: string | string[], dest?: string, choices?: readonly string[]): OptSpec => {
  const n = Array.isArray(names) ? names : [names];
  return { names: n, type: 'string', dest: dest ?? destOf(n[0]), choices };
};
const int = (names: string | string[], dest?: string): OptSpec => {
  const n = Array.isArray(names) ? names : [names];
  return { names: n, type: 'int', dest: dest ?? destOf(n[0]) };
};
const bool = (names: string | string[], dest?: string): OptSpec => {
  const n = Array.isArray(names) ? names : [names];
  return { names: n, type: 'bool', dest: dest ?? destOf(n[0]) };
};
const list = (names: string | string[], dest?: string, choices?: readonly string[]): OptSpec => {
  const n = Array.isArray(names) ? names : [names];
  return { names: n, type: 'list', dest: dest ?? destOf(n[0]), choices };
};
const empty = (o: OptSpec): OptSpec => ({ ...o, allowEmpty: true });
/** An option pykickstart removed from the given version on (e.g. firewall --telnet in F14). */
const until = (o: OptSpec, removedIn: string): OptSpec => ({ ...o, removedIn });
/** An option pykickstart deprecates from the given version on (timezone --ntpservers in F40). */
const deprecated = (o: OptSpec, deprecatedIn: string): OptSpec => ({ ...o, deprecatedIn });
function destOf(name: string): string {
  return name.replace(/^--?/, '').replace(/-/g, '_');
}

export const FSTYPES: readonly FsType[] = ['xfs', 'ext4', 'ext3', 'ext2', 'vfat', 'efi', 'swap', 'biosboot', 'prepboot', 'btrfs'];
/** File systems apply can make; pykickstart takes any --fstype string (Anaconda checks it at install). */
const APPLICABLE_FSTYPES: readonly string[] = [...FSTYPES.filter((f) => f !== 'btrfs' && f !== 'prepboot'), 'lvmpv'];
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
// pykickstart takes any name; Anaconda (and shadow-utils without --badname) want these characters.
const USERNAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
// systemd's unit name characters (unit_name_is_valid), at most one '@', no leading '-' or '.'
// (a leading '-' would reach systemctl as an option).
const UNIT_RE = /^(?=.{1,255}$)[A-Za-z0-9:_\\][A-Za-z0-9:_.\\-]*(@[A-Za-z0-9:_.\\-]*)?$/;
// A network interface name as the kernel takes it (dev_valid_name): at most 15 bytes, no '/',
// no whitespace, not '.' or '..'; here further limited to what NetworkManager keyfiles hold.
const IFNAME_RE = /^(?!\.\.?$)[A-Za-z0-9_.:-]{1,15}$/;
const MAC_RE = /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/;
// An XKB layout, optionally with its variant as Anaconda writes it: "cz (qwerty)".
const XLAYOUT_RE = /^(?!\.\.?( |$))[A-Za-z0-9_+.-]+( ?\((?!\.\.?\))[A-Za-z0-9_+.-]+\))?$/;
const KEYMAP_RE = /^(?!\.\.?$)[A-Za-z0-9_+.-]+$/;
const FW_SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const LANG_RE = /^(C|POSIX|C\.UTF-8|C\.utf8|[a-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?)$/;
const TZ_RE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;
const OSNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
// ${basearch} is substituted by Anaconda (and apply) with the machine's architecture.
const REF_RE = /^([A-Za-z0-9_.-]|\$\{basearch\})+(\/([A-Za-z0-9_.-]|\$\{basearch\})+)*$/;
const SSHKEY_RE = /(^|\s)(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/]+={0,3}(\s|$)/;
const CRYPT_RE = /^(!?\$(1|5|6|y|gy|2[abxy]?|7)\$[^\s:]+|![^\s:]*|\*[^\s:]*)$/;
const VG_RE = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;

/** Text that goes into a passwd/shadow field as written: a ":" would start the next field. */
function checkField(c: Cmd, value: string | null, option: string): void {
  if (value !== null && /[:\n]/.test(value)) c.err('bad-value', `must not contain ":" or a newline (it would split the /etc/passwd or /etc/shadow entry), got ${JSON.stringify(value)}`, option);
}

/** A firewalld port: PORT[-PORT] (1-65535) or a service port name, then :PROTO. */
function checkPort(c: Cmd, p: string): void {
  const m = /^(?:([0-9]{1,5})(?:-([0-9]{1,5}))?|[a-z][a-z0-9-]*):(tcp|udp|sctp|dccp)$/.exec(p);
  const [lo, hi] = [Number(m?.[1] ?? 1), Number(m?.[2] ?? m?.[1] ?? 1)];
  if (!m || lo < 1 || hi > 65535 || hi < lo) c.err('bad-value', `invalid port ${JSON.stringify(p)} (expected PORT[-PORT]:PROTO with ports 1-65535, e.g. 1234:udp)`, c.w('ports'));
}

/**
 * --mkfsoptions go to mkfs on the provisioning host: options that read its files (ext4's
 * -d DIR copies a host directory in, -l FILE reads a bad-block list, xfs's -p protofile)
 * would put host files into the image, so they and any path are refused.
 */
function checkMkfsOptions(c: Cmd, value: string | null, option: string): void {
  if (value === null) return;
  for (const w of value.split(/\s+/).filter(Boolean)) {
    if (/^-[dlp]/.test(w) || w.includes('/') || /[\n;&|`$<>]/.test(w)) c.err('bad-value', `${JSON.stringify(w)} is not allowed: options that read files of the installing host (-d, -l, -p, paths) are refused`, option);
  }
}

/** --fsoptions become the fourth field of an fstab line: whitespace would add fields. */
function checkFsOptions(c: Cmd): void {
  const v = c.str('fsoptions');
  // pykickstart takes any string; a space or # would add fields to the fstab line, so it is
  // refused (the one deliberate difference in the ported pykickstart cases).
  if (v !== null && /\s|#/.test(v)) c.err('bad-value', `invalid mount options ${JSON.stringify(v)} (comma-separated, no spaces or #: they would change the /etc/fstab line)`, c.w('fsoptions'));
}

function checkMount(c: Cmd, mnt: string, allowPv: boolean): void {
  if (mnt === 'swap' || mnt === 'biosboot' || mnt === 'prepboot' || mnt === 'None' || mnt === 'none') return;
  if (allowPv && /^pv\.[A-Za-z0-9_.-]+$/.test(mnt)) return;
  if (/^raid\./.test(mnt)) {
    c.unsupported(`software RAID members (${mnt}) are not in the atomic-host subset apply does (no raid command)`);
    return;
  }
  if (allowPv && /^pv\./.test(mnt)) {
    c.err('bad-value', `invalid physical volume name ${JSON.stringify(mnt)}`);
    return;
  }
  // A relative mount point is valid for pykickstart (Anaconda refuses it at install); `..` is refused here.
  if (mnt.split('/').some((s) => s === '..' || s === '.')) c.err('bad-value', `mount point ${JSON.stringify(mnt)} must not contain . or ..`);
  else if (!mnt.startsWith('/')) c.unsupported(`mount point ${JSON.stringify(mnt)} is not an absolute path, swap, biosboot${allowPv ? ' or pv.NAME' : ''}`);
}

function fstypeFor(c: Cmd, mnt: string, given: string | null): FsType {
  if (mnt === 'swap') {
    if (given && given !== 'swap') c.unsupported(`a swap partition cannot have --fstype=${given}`, c.w('fstype'));
    return 'swap';
  }
  if (mnt === 'biosboot') return 'biosboot';
  if (mnt === 'prepboot') return 'prepboot';
  if (/^pv\./.test(mnt)) {
    // Anaconda's own kickstarts write `part pv.1 --fstype=lvmpv`.
    if (given && given !== 'lvmpv') c.unsupported(`a physical volume (${mnt}) takes no --fstype other than lvmpv`, c.w('fstype'));
    return 'lvmpv';
  }
  if (given === 'tmpfs') {
    if (c.has('grow') || c.has('maxsize')) c.err('conflict', '--fstype=tmpfs cannot be used with --grow or --maxsize', c.has('grow') ? '--grow' : c.w('maxsize'));
    c.unsupported('--fstype=tmpfs is an fstab entry without a partition; apply makes partitions only', c.w('fstype'));
    return 'tmpfs' as FsType;
  }
  if (given && !APPLICABLE_FSTYPES.includes(given) && given !== 'btrfs' && given !== 'prepboot') {
    c.unsupported(`file system type ${JSON.stringify(given)} is not one apply makes (${APPLICABLE_FSTYPES.filter((f) => f !== 'lvmpv').join(', ')})`, c.w('fstype'));
    return given as FsType;
  }
  if (given === 'lvmpv') {
    c.unsupported(`--fstype=lvmpv needs a pv.NAME mount point, not ${mnt}`, c.w('fstype'));
    return 'lvmpv';
  }
  if (given === 'swap') c.unsupported(`--fstype=swap needs the mount point "swap", not ${mnt}`, c.w('fstype'));
  if (given === 'biosboot' || given === 'prepboot') return given;
  if (given === 'efi') return 'efi';
  if (given) return given as FsType;
  if (mnt === '/boot/efi') return 'efi';
  return 'xfs';
}

const XFS_MIN_MIB = 300;

/** What part and logvol share: size, growth and the file system on the volume. */
const volumeOptions = (): OptSpec[] => [
  int('--size'),
  flag('--grow'),
  int('--maxsize'),
  str('--fstype', 'fstype'),
  str('--label'),
  str('--fsoptions'),
  str('--mkfsoptions'),
  flag('--recommended'),
  // Accepted as pykickstart does; they only matter for encryption, resizing or
  // hibernation, none of which apply does (see the checks in the handlers).
  str('--fsprofile'),
  flag('--resize'),
  flag('--hibernation'),
  ...encryptionOptions(),
];

/** LUKS options (part, logvol, autopart): accepted as pykickstart does; apply encrypts nothing. */
const encryptionOptions = (): OptSpec[] => [
  flag('--encrypted'),
  empty(str('--passphrase')),
  str('--escrowcert'),
  flag('--backuppassphrase'),
  str('--cipher'),
  str('--luks-version', 'luks_version'),
  str('--pbkdf'),
  int('--pbkdf-memory', 'pbkdf_memory'),
  int('--pbkdf-time', 'pbkdf_time'),
  int('--pbkdf-iterations', 'pbkdf_iterations'),
];

/** The volume options apply ignores or cannot do, said as warnings (valid, but not here). */
function volumeNotes(c: Cmd): void {
  // The rules pykickstart's part/logvol handlers check between their options.
  const existing = c.name === 'logvol' ? 'useexisting' : 'onpart';
  const noformat = c.has('noformat') || (c.name === 'logvol' && c.w('useexisting') === '--noformat');
  if (c.has('resize') && !c.has(existing)) c.err('missing-option', `--resize can only be used with ${c.w(existing)}`, '--resize');
  else if (c.has('resize') && !c.has('size')) c.err('missing-option', '--resize needs --size for the new size', '--resize');
  else if (c.has('resize')) c.unsupported('--resize changes an existing volume; apply makes new ones', '--resize');
  if (c.has('mkfsoptions') && noformat) c.err('conflict', '--mkfsoptions with --noformat has no effect', c.w('mkfsoptions'));
  if (c.has('mkfsoptions') && c.has('fsprofile')) c.err('conflict', '--mkfsoptions and --fsprofile cannot be used together', '--fsprofile');
  encryptionRules(c);
  if (c.has('hibernation')) c.warn('--hibernation only sizes swap for hibernation in Anaconda; apply sizes it as written', '--hibernation');
  if (c.has('fsprofile')) c.warn('--fsprofile is ignored by apply', '--fsprofile');
}

/** pykickstart's checks of the LUKS options (part, logvol, autopart). */
function encryptionRules(c: Cmd): void {
  if (c.has('pbkdf_time') && c.has('pbkdf_iterations')) c.err('conflict', 'only one of --pbkdf-time and --pbkdf-iterations can be given', '--pbkdf-iterations');
  if (c.has('hw_passphrase') && c.str('luks_version') !== 'luks2-hw-opal') c.err('conflict', '--hw-passphrase may be given only with --luks-version=luks2-hw-opal', '--hw-passphrase');
}

export const COMMANDS: Record<string, CommandDef> = {
  text: { options: [flag('--non-interactive')], positionals: [0, 0], once: false, handle: (c, ks) => mode(c, ks, 'text') },
  cmdline: { options: [], positionals: [0, 0], once: false, handle: (c, ks) => mode(c, ks, 'cmdline') },
  graphical: { options: [flag('--non-interactive')], positionals: [0, 0], once: false, handle: (c, ks) => mode(c, ks, 'graphical') },

  lang: {
    options: [list('--addsupport')],
    positionals: [1, 1],
    positionalName: 'language (e.g. en_US.UTF-8)',
    once: true,
    handle(c, ks) {
      const lang = c.args[0];
      if (!LANG_RE.test(lang)) c.err('bad-value', `invalid language ${JSON.stringify(lang)} (expected e.g. en_US.UTF-8)`);
      for (const l of c.list('addsupport')) if (!LANG_RE.test(l)) c.err('bad-value', `invalid language ${JSON.stringify(l)}`, c.w('addsupport'));
      ks.lang = { lang, addsupport: c.list('addsupport'), at: c.at };
    },
  },

  keyboard: {
    options: [str('--vckeymap'), list('--xlayouts'), list('--switch')],
    positionals: [0, 1],
    once: true,
    handle(c, ks) {
      const layout = c.args[0] ?? null;
      if (!layout && !c.has('vckeymap') && !c.has('xlayouts')) c.err('missing-option', 'needs --vckeymap, --xlayouts or a layout');
      if (layout !== null && !XLAYOUT_RE.test(layout)) c.err('bad-value', `invalid keyboard layout ${JSON.stringify(layout)} (e.g. us or 'cz (qwerty)')`);
      const vc = c.str('vckeymap');
      if (vc !== null && !KEYMAP_RE.test(vc)) c.err('bad-value', `invalid console keymap ${JSON.stringify(vc)} (a keymap name such as us or de-nodeadkeys)`, c.w('vckeymap'));
      for (const v of c.list('xlayouts')) if (!XLAYOUT_RE.test(v)) c.err('bad-value', `invalid X layout ${JSON.stringify(v)} (e.g. us or 'cz (qwerty)')`, c.w('xlayouts'));
      for (const v of c.list('switch')) if (!/^[A-Za-z0-9_]+:[A-Za-z0-9_]+$/.test(v)) c.err('bad-value', `invalid layout switch option ${JSON.stringify(v)} (an XKB option such as grp:alt_shift_toggle)`, c.w('switch'));
      ks.keyboard = { layout, vckeymap: c.str('vckeymap') ?? (layout ? layout.replace(/ ?\(.*$/, '') : null), xlayouts: c.list('xlayouts'), at: c.at };
    },
  },

  timezone: {
    // From F40 pykickstart deprecates --isUtc, --nontp and --ntpservers (timesource replaces
    // the last two); atomhost still applies them, with pykickstart's warning.
    options: [flag('--utc', 'utc'), deprecated(flag('--isUtc', 'utc'), 'F40'), deprecated(flag('--nontp'), 'F40'), deprecated(empty(list('--ntpservers')), 'F40')],
    positionals: [0, 1],
    positionalName: 'time zone (e.g. Europe/Paris)',
    once: true,
    handle(c, ks) {
      // pykickstart: a zone, or at least one option (`timezone --utc` alone is valid).
      const tz = c.args[0] ?? '';
      if (!tz && !c.has('utc') && !c.has('nontp') && !c.has('ntpservers')) c.err('missing-value', 'needs a time zone (e.g. Europe/Paris) or an option');
      if (tz && !TZ_RE.test(tz)) c.err('bad-value', `invalid time zone ${JSON.stringify(tz)} (expected e.g. America/New_York or UTC)`);
      // Anaconda checks the zone against the tz database at install; so does apply where one is installed.
      else if (tz && existsSync('/usr/share/zoneinfo/UTC') && !existsSync(`/usr/share/zoneinfo/${tz}`)) c.unsupported(`unknown time zone ${JSON.stringify(tz)} (not in the tz database)`);
      if (c.has('nontp') && c.has('ntpservers')) c.err('conflict', 'Options --nontp and --ntpservers are mutually exclusive', c.w('ntpservers'));
      for (const s of c.list('ntpservers')) if (!HOSTNAME_RE.test(s) && !isIPv4(s) && !isIPv6(s)) c.err('bad-value', `invalid NTP server ${JSON.stringify(s)}`, c.w('ntpservers'));
      ks.timezone = { timezone: tz, utc: c.has('utc'), nontp: c.has('nontp'), ntpservers: c.list('ntpservers'), at: c.at };
    },
  },

  auth: { options: [], passthrough: true, positionals: [0, -1], once: true, handle: (c, ks) => auth(c, ks, 'auth') },
  authconfig: { options: [], passthrough: true, positionals: [0, -1], once: true, handle: (c, ks) => auth(c, ks, 'authconfig') },
  authselect: { options: [], passthrough: true, positionals: [0, -1], once: true, handle: (c, ks) => auth(c, ks, 'authselect') },

  selinux: {
    options: [flag('--enforcing', 'mode', 'enforcing'), flag('--permissive', 'mode', 'permissive'), flag('--disabled', 'mode', 'disabled')],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      lastWins(c, 'mode');
      ks.selinux = { mode: (c.str('mode') as 'enforcing' | 'permissive' | 'disabled' | null) ?? 'enforcing', at: c.at };
    },
  },

  firewall: {
    options: [
      flag(['--enabled', '--enable'], 'state', 'enabled'),
      flag(['--disabled', '--disable'], 'state', 'disabled'),
      flag('--use-system-defaults'),
      list('--service', 'services'),
      list('--port', 'ports'),
      list('--trust'),
      list('--remove-service', 'remove'),
      flag('--ssh'),
      flag('--http'),
      flag('--smtp'),
      flag('--ftp'),
      until(flag('--telnet'), 'F14'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      lastWins(c, 'state');
      const services = [...c.list('services')];
      for (const s of ['ssh', 'http', 'smtp', 'ftp', 'telnet']) if (c.has(s)) services.push(s);
      // pykickstart reads a port without a protocol as PORT:tcp.
      const ports = c.list('ports').map((p) => (p.includes(':') ? p : `${p}:tcp`));
      for (const p of ports) checkPort(c, p);
      for (const s of c.list('services')) if (!FW_SERVICE_RE.test(s)) c.err('bad-value', `invalid service ${JSON.stringify(s)} (a firewalld service name such as ssh)`, c.w('services'));
      for (const s of c.list('remove')) if (!FW_SERVICE_RE.test(s)) c.err('bad-value', `invalid service ${JSON.stringify(s)} (a firewalld service name such as ssh)`, c.w('remove'));
      for (const d of c.list('trust')) if (!IFNAME_RE.test(d)) c.err('bad-value', `invalid interface ${JSON.stringify(d)} (an interface name such as eth0)`, c.w('trust'));
      const enabled = c.str('state') !== 'disabled';
      if (!enabled && (services.length || ports.length)) c.warn('services and ports are ignored on a disabled firewall', c.w('state'));
      ks.firewall = { enabled, services, ports, trust: c.list('trust'), removeServices: c.list('remove'), useSystemDefaults: c.has('use_system_defaults'), at: c.at };
    },
  },

  network: {
    options: [
      str('--bootproto', 'bootproto', ['dhcp', 'bootp', 'static', 'query', 'ibft']),
      str('--device'),
      flag('--activate', 'activate', 'yes'),
      flag('--no-activate', 'activate', 'no'),
      bool('--onboot'),
      str('--ip'),
      str('--netmask'),
      str('--gateway'),
      list('--nameserver'),
      str('--hostname'),
      str('--ipv6'),
      str('--ipv6gateway'),
      flag('--noipv4'),
      flag('--noipv6'),
      int('--mtu'),
      flag('--nodefroute'),
      flag('--nodns'),
      str('--interfacename'),
      str('--ethtool'),
      str('--dhcpclass'),
      flag('--notksdevice'),
      str('--bindto', 'bindto', ['mac']),
      str('--ipv4-dns-search', 'ipv4_dns_search'),
      str('--ipv6-dns-search', 'ipv6_dns_search'),
      flag('--ipv4-ignore-auto-dns', 'ipv4_ignore_auto_dns'),
      flag('--ipv6-ignore-auto-dns', 'ipv6_ignore_auto_dns'),
      // Wireless, bonds, teams, bridges and VLANs: valid kickstart, not written by apply.
      str('--essid'),
      str('--wepkey'),
      str('--wpakey'),
      str('--bondslaves'),
      str('--bondopts'),
      str('--vlanid'),
      str('--teamslaves'),
      str('--teamconfig'),
      str('--bridgeslaves'),
      str('--bridgeopts'),
    ],
    positionals: [0, 0],
    once: false,
    handle(c, ks) {
      const bootproto = (c.str('bootproto') ?? 'dhcp') as NetworkSpec['bootproto'];
      const ip = c.str('ip');
      const netmask = c.str('netmask');
      const hostname = c.str('hostname');
      if (bootproto === 'static' && !ip && !c.has('noipv4')) c.unsupported('--bootproto=static without --ip gives no address to write', '--bootproto');
      if (bootproto === 'static' && ip && !netmask) c.unsupported('--bootproto=static needs --netmask to write the address', '--ip');
      // pykickstart takes these as strings; NetworkManager keyfiles need addresses, so a
      // value apply cannot write is "valid, but not here".
      if (ip && bootproto !== 'static') c.warn(`--ip is ignored unless --bootproto=static (it is ${bootproto})`, c.w('ip'));
      if (ip && !isIPv4(ip)) c.err('bad-value', `invalid IPv4 address ${JSON.stringify(ip)}`, c.w('ip'));
      if (netmask && !isNetmask(netmask)) c.err('bad-value', `invalid netmask ${JSON.stringify(netmask)} (a dotted mask like 255.255.255.0 or a prefix length)`, c.w('netmask'));
      const gw = c.str('gateway');
      // A host name (pykickstart's tests use gateway.wherever.com) is valid but not written;
      // anything that is neither a name nor an address is refused.
      const addrOrName = (v: string, isAddr: (x: string) => boolean, what: string, dest: string) => {
        if (isAddr(v)) return;
        if (HOSTNAME_RE.test(v)) c.unsupported(`${what} ${JSON.stringify(v)} is a host name; apply writes addresses only`, c.w(dest));
        else c.err('bad-value', `invalid ${what} ${JSON.stringify(v)}`, c.w(dest));
      };
      if (gw) addrOrName(gw, isIPv4, 'IPv4 gateway', 'gateway');
      for (const n of c.list('nameserver')) addrOrName(n, (x) => isIPv4(x) || isIPv6(x), 'name server', 'nameserver');
      for (const o of ['essid', 'wepkey', 'wpakey', 'bondslaves', 'bondopts', 'vlanid', 'teamslaves', 'teamconfig', 'bridgeslaves', 'bridgeopts']) {
        if (c.has(o)) c.unsupported('wireless, bond, team, bridge and VLAN devices are not written by apply', c.w(o));
      }
      for (const o of ['ipv4_dns_search', 'ipv6_dns_search', 'ipv4_ignore_auto_dns', 'ipv6_ignore_auto_dns']) {
        if (c.has(o) && !c.has('device')) c.err('missing-option', `${c.w(o)} needs --device`, c.w(o));
      }
      for (const o of ['ethtool', 'dhcpclass', 'notksdevice', 'bindto', 'ipv4_dns_search', 'ipv6_dns_search', 'ipv4_ignore_auto_dns', 'ipv6_ignore_auto_dns']) {
        if (c.has(o)) c.warn('accepted and ignored by apply', c.w(o));
      }
      if (hostname !== null && !HOSTNAME_RE.test(hostname)) c.err('bad-value', `invalid host name ${JSON.stringify(hostname)} (letters, digits, '-' and '.', labels of 1-63 characters)`, c.w('hostname'));
      const ipv6 = c.str('ipv6');
      if (ipv6 && ipv6 !== 'auto' && ipv6 !== 'dhcp' && !isIPv6Prefix(ipv6)) {
        // Address-like text (pykickstart's tests use 1:2:3:4) is valid but not written; other text is refused.
        if (/^[0-9A-Fa-f:.]+(\/(\d{1,2}|1[01]\d|12[0-8]))?$/.test(ipv6)) c.unsupported(`--ipv6 ${JSON.stringify(ipv6)} is not an IPv6 address apply can write`, c.w('ipv6'));
        else c.err('bad-value', `invalid --ipv6 ${JSON.stringify(ipv6)} (auto, dhcp or ADDRESS[/PREFIX])`, c.w('ipv6'));
      }
      const gw6 = c.str('ipv6gateway');
      if (gw6) addrOrName(gw6, isIPv6, 'IPv6 gateway', 'ipv6gateway');
      const ifname = c.str('interfacename');
      if (ifname && !IFNAME_RE.test(ifname)) c.err('bad-value', `invalid interface name ${JSON.stringify(ifname)} (at most 15 letters, digits, _ . : -)`, c.w('interfacename'));
      const dev = c.str('device');
      if (dev && !IFNAME_RE.test(dev) && !MAC_RE.test(dev)) c.err('bad-value', `invalid device ${JSON.stringify(dev)} (an interface name, a MAC address, link or bootif)`, c.w('device'));
      const mtu = c.int('mtu');
      if (mtu !== null && (mtu < 68 || mtu > 65536)) c.unsupported( `MTU ${mtu} is out of range (68-65536)`, c.w('mtu'));
      ks.network.push({
        bootproto,
        device: dev,
        activate: c.str('activate') === 'yes',
        onboot: c.bool('onboot', true),
        ip,
        netmask,
        gateway: gw,
        nameservers: c.list('nameserver'),
        hostname,
        ipv6,
        noipv4: c.has('noipv4'),
        noipv6: c.has('noipv6'),
        mtu,
        nodefroute: c.has('nodefroute'),
        nodns: c.has('nodns'),
        at: c.at,
      });
    },
  },

  rootpw: {
    // --iscrypted and --plaintext set one value in pykickstart: the one written last wins.
    options: [flag('--iscrypted', 'iscrypted', 'yes'), flag('--plaintext', 'iscrypted', 'no'), flag('--lock'), flag('--allow-ssh', 'allow_ssh')],
    positionals: [0, 1],
    once: true,
    handle(c, ks) {
      const password = c.args[0] ?? null;
      if (password === null && !c.has('lock')) c.err('missing-value', 'needs a password (or --lock)');
      lastWins(c, 'iscrypted');
      // pykickstart takes any string with --iscrypted and Anaconda writes it as given (Fedora's
      // `rootpw --iscrypted --lock locked`): no password can match a value that is not a hash.
      const crypted = c.str('iscrypted') === 'yes';
      if (password !== null && crypted && !CRYPT_RE.test(password) && !c.has('lock')) {
        c.warn(`${JSON.stringify(password)} is not a crypt(3) hash: no password will match it, so root cannot log in with one`, '--iscrypted');
      }
      // A plain-text password is hashed before it reaches /etc/shadow, so ":" is fine in it.
      if (crypted) checkField(c, password, '--iscrypted');
      ks.rootpw = { password, iscrypted: crypted, lock: c.has('lock'), allowSsh: c.has('allow_ssh'), at: c.at };
    },
  },

  user: {
    options: [
      str('--name'),
      list('--groups'),
      str('--homedir'),
      str('--password'),
      flag('--iscrypted', 'iscrypted', 'yes'),
      flag('--plaintext', 'iscrypted', 'no'),
      flag('--lock'),
      str('--shell'),
      int('--uid'),
      int('--gid'),
      str('--gecos'),
    ],
    positionals: [0, 0],
    once: false,
    handle(c, ks) {
      const name = c.str('name');
      if (name === null) c.err('missing-option', 'needs --name', '--name');
      else if (!USERNAME_RE.test(name)) c.err('bad-value', `invalid user name ${JSON.stringify(name)} (lower case letters, digits, _ . -; at most 32)`, c.w('name'));
      else if (name === 'root') c.unsupported('the root account is set with rootpw, not user', c.w('name'));
      for (const g of c.list('groups')) if (!USERNAME_RE.test(g)) c.err('bad-value', `invalid group name ${JSON.stringify(g)}`, c.w('groups'));
      lastWins(c, 'iscrypted');
      const crypted = c.str('iscrypted') === 'yes';
      const password = c.str('password');
      if (crypted && password === null) c.warn('--iscrypted without --password sets no password', '--iscrypted');
      if (password !== null && crypted && !CRYPT_RE.test(password) && !c.has('lock')) c.warn(`the password is not a crypt(3) hash: no password will match it`, c.w('password'));
      for (const dest of ['homedir', 'shell', 'gecos'] as const) checkField(c, c.str(dest), c.w(dest));
      if (crypted) checkField(c, password, c.w('password'));
      for (const dest of ['homedir', 'shell'] as const) {
        const v = c.str(dest);
        if (v === null) continue;
        if (!v.startsWith('/')) c.err('bad-value', `must be an absolute path, got ${JSON.stringify(v)}`, c.w(dest));
        else if (v.split('/').includes('..')) c.err('bad-value', `must not contain .. components, got ${JSON.stringify(v)}`, c.w(dest));
      }
      for (const dest of ['uid', 'gid'] as const) {
        const v = c.int(dest);
        if (v !== null && (v < 0 || v > 2 ** 31 - 2)) c.unsupported(`${v} is out of range`, c.w(dest));
      }
      ks.users.push({
        name: name ?? '',
        groups: c.list('groups'),
        homedir: c.str('homedir'),
        password,
        iscrypted: crypted,
        lock: c.has('lock'),
        shell: c.str('shell'),
        uid: c.int('uid'),
        gid: c.int('gid'),
        gecos: c.str('gecos'),
        at: c.at,
      });
    },
  },

  sshkey: {
    options: [str('--username')],
    positionals: [1, 1],
    positionalName: 'public key (quoted)',
    once: false,
    handle(c, ks) {
      const username = c.str('username');
      if (username === null) c.err('missing-option', 'needs --username', '--username');
      else if (username !== 'root' && !USERNAME_RE.test(username)) c.err('bad-value', `invalid user name ${JSON.stringify(username)}`, c.w('username'));
      const key = c.args[0];
      // pykickstart takes any string; one that is not a public key is not written.
      if (key !== undefined && !SSHKEY_RE.test(key)) c.unsupported('not an OpenSSH public key (expected "ssh-ed25519 AAAA... comment"; quote it)');
      ks.sshkeys.push({ username: username ?? '', key: key ?? '', at: c.at });
    },
  },

  services: {
    options: [list('--enabled'), list('--disabled')],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      if (!c.has('enabled') && !c.has('disabled')) c.err('missing-option', 'One of --disabled or --enabled must be provided');
      const norm = (s: string) => (/\.(service|socket|timer|target|path|mount|automount|swap|slice)$/.test(s) ? s : `${s}.service`);
      for (const dest of ['enabled', 'disabled']) for (const s of c.list(dest)) if (!UNIT_RE.test(s)) c.err('bad-value', `invalid unit name ${JSON.stringify(s)} (systemd unit name characters, not starting with - or .)`, c.w(dest));
      const enabled = c.list('enabled').map(norm);
      const disabled = c.list('disabled').map(norm);
      // pykickstart takes a unit in both lists; apply leaves it disabled.
      for (const s of enabled) if (disabled.includes(s)) c.warn(`${s} is both enabled and disabled: it stays disabled`, '--disabled');
      ks.services = { enabled: enabled.filter((s) => !disabled.includes(s)), disabled, at: c.at };
    },
  },

  bootloader: {
    options: [
      int('--timeout'),
      str('--append'),
      str('--location', 'location', ['mbr', 'partition', 'none', 'boot']),
      str('--boot-drive', 'boot_drive'),
      list('--driveorder'),
      str('--password'),
      flag('--iscrypted'),
      flag('--leavebootorder'),
      flag('--disabled'),
      flag('--nombr'),
      flag('--extlinux'),
      flag('--sdboot'),
      str('--default'),
      str('--md5pass'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      const timeout = c.int('timeout');
      if (timeout !== null && timeout < 0) c.unsupported('a negative timeout is not one apply can write (0 or more seconds)', c.w('timeout'));
      const drive = c.str('boot_drive');
      if (drive !== null && drive.includes(',')) c.err('bad-value', `--boot-drive accepts only one drive, got ${JSON.stringify(drive)}`, c.w('boot_drive'));
      if (c.has('sdboot') && c.has('extlinux')) c.err('conflict', 'only one of --sdboot and --extlinux may be given', '--extlinux');
      if (c.has('sdboot')) c.unsupported('systemd-boot is not supported (apply installs GRUB)', '--sdboot');
      if (c.has('default')) c.warn('--default is ignored (the newest deployment boots first)', '--default');
      const append = c.str('append') ?? '';
      const words = append.split(/\s+/).filter(Boolean);
      for (const wd of words) if (/^(ostree|root)=/.test(wd)) c.unsupported(`${wd.split('=')[0]}= is set by the installer, not by --append`, c.w('append'));
      if (c.has('extlinux')) c.unsupported('extlinux is not supported (atomhost writes BLS entries)', '--extlinux');
      ks.bootloader = {
        timeout,
        append: words,
        location: (c.str('location') ?? 'mbr') as 'mbr',
        bootDrive: c.str('boot_drive'),
        disabled: c.has('disabled'),
        at: c.at,
      };
    },
  },

  zerombr: {
    options: [],
    positionals: [0, 0],
    once: true,
    handle: (c, ks) => {
      ks.zerombr = { at: c.at };
    },
  },

  clearpart: {
    options: [
      flag('--all', 'which', 'all'),
      flag('--none', 'which', 'none'),
      flag('--linux', 'which', 'linux'),
      list('--list'),
      list('--drives'),
      flag('--initlabel'),
      str('--disklabel', 'disklabel', ['gpt', 'msdos']),
      flag('--cdl'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      lastWins(c, 'which');
      if (c.has('cdl')) c.warn('--cdl only concerns DASDs on s390x; ignored by apply', '--cdl');
      const which = c.has('list') ? 'list' : ((c.str('which') ?? 'none') as 'all');
      if (c.str('disklabel') === 'msdos') c.unsupported('atomhost partitions with GPT only', c.w('disklabel'));
      ks.clearpart = { which, list: c.list('list'), drives: c.list('drives'), initlabel: c.has('initlabel'), disklabel: c.str('disklabel') as 'gpt' | null, at: c.at };
    },
  },

  reqpart: {
    options: [flag('--add-boot', 'add_boot')],
    positionals: [0, 0],
    once: true,
    handle: (c, ks) => {
      ks.reqpart = { addBoot: c.has('add_boot'), at: c.at };
    },
  },

  autopart: {
    options: [
      str('--type', 'type', ['lvm', 'plain', 'partition', 'thinp', 'btrfs']),
      flag('--nolvm', 'type', 'plain'),
      str('--fstype', 'fstype'),
      flag('--nohome'),
      flag('--noboot'),
      flag('--noswap'),
      ...encryptionOptions(),
      flag('--hibernation'),
      str('--hw-passphrase', 'hw_passphrase'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      // --nolvm and --type set one value in pykickstart (the last wins); "partition" is plain.
      const written = c.str('type') === 'partition' ? 'plain' : c.str('type');
      const type = (written ?? 'lvm') as 'lvm' | 'plain' | 'thinp' | 'btrfs';
      const fstype = c.str('fstype') as FsType | null;
      if (fstype === 'btrfs') c.err('bad-value', 'autopart --fstype=btrfs is not valid; use --type=btrfs', c.w('fstype'));
      else if (fstype && type === 'btrfs') c.err('conflict', '--type=btrfs takes no --fstype', c.w('fstype'));
      else if (fstype && !FSTYPES.includes(fstype)) c.unsupported(`file system type ${JSON.stringify(fstype)} is not one apply makes`, c.w('fstype'));
      if (fstype && ['swap', 'biosboot', 'prepboot', 'efi', 'vfat'].includes(fstype)) c.unsupported(`--fstype=${fstype} cannot hold the root file system`, c.w('fstype'));
      if (c.has('hibernation') && c.has('noswap')) c.err('conflict', 'only one of --noswap and --hibernation can be given', '--hibernation');
      encryptionRules(c);
      if (c.has('hibernation')) c.warn('--hibernation is ignored: apply sizes swap without it', '--hibernation');
      if (type === 'thinp') c.unsupported('thin provisioning needs device-mapper to format the pool, which this host lacks', c.w('type'));
      if (type === 'btrfs' || fstype === 'btrfs') c.unsupported('btrfs is not supported by apply', c.w('type'));
      if (c.has('encrypted')) c.unsupported('encryption needs dm-crypt, which this host lacks', '--encrypted');
      ks.autopart = { type, fstype, nohome: c.has('nohome'), noboot: c.has('noboot'), noswap: c.has('noswap'), encrypted: c.has('encrypted'), at: c.at };
    },
  },

  part: {
    options: [
      ...volumeOptions().map((o) => (o.dest === 'fstype' ? { ...o, names: ['--fstype', '--type'] } : o)),
      str(['--ondisk', '--ondrive'], 'ondisk'),
      flag('--asprimary'),
      flag('--noformat'),
      str(['--onpart', '--usepart'], 'onpart'),
      str('--onbiosdisk'),
      str('--hw-passphrase', 'hw_passphrase'),
    ],
    positionals: [1, 1],
    positionalName: 'mount point',
    once: false,
    handle(c, ks) {
      const mnt = c.args[0];
      checkMount(c, mnt, true);
      const fstype = fstypeFor(c, mnt, c.str('fstype'));
      const size = sizeOpts(c, fstype, mnt);
      volumeNotes(c);
      if (c.has('onbiosdisk')) c.unsupported('--onbiosdisk names a BIOS disk; apply partitions the one target disk', '--onbiosdisk');
      if (c.has('onpart')) c.unsupported('--onpart reuses an existing partition; apply makes a new partition table', c.w('onpart'));
      if (c.has('noformat')) c.unsupported('--noformat keeps an existing file system; apply makes new ones', '--noformat');
      if (c.has('encrypted')) c.unsupported('encryption needs dm-crypt, which this host lacks', '--encrypted');
      if (fstype === 'btrfs') c.unsupported('btrfs is not supported by apply', c.w('fstype'));
      if (fstype === 'prepboot') c.unsupported('PReP boot partitions are for POWER; apply makes x86_64 images', c.w('fstype'));
      const label = c.str('label');
      if (label !== null && /[\s/]/.test(label)) c.err('bad-value', `invalid label ${JSON.stringify(label)} (no spaces or /)`, c.w('label'));
      else if (label !== null && label.length > 16) c.unsupported(`label ${JSON.stringify(label)} is longer than the 16 characters ext4 and xfs keep`, c.w('label'));
      ks.parts.push({
        mntpoint: mnt,
        fstype,
        size,
        grow: c.has('grow'),
        maxsize: c.int('maxsize'),
        label,
        fsoptions: (checkFsOptions(c), c.str('fsoptions')),
        mkfsoptions: (checkMkfsOptions(c, c.str('mkfsoptions'), c.w('mkfsoptions')), c.str('mkfsoptions')),
        ondisk: c.str('ondisk'),
        asprimary: c.has('asprimary'),
        noformat: c.has('noformat'),
        onpart: c.str('onpart'),
        recommended: c.has('recommended'),
        encrypted: c.has('encrypted'),
        at: c.at,
      });
    },
  },

  volgroup: {
    options: [int('--pesize'), flag('--useexisting'), flag('--noformat', 'useexisting'), int('--reserved-space', 'reserved_space'), int('--reserved-percent', 'reserved_percent')],
    positionals: [1, -1],
    positionalName: 'volume group name',
    once: false,
    handle(c, ks) {
      const [name, ...pvs] = c.args;
      if (!VG_RE.test(name) || name.length > 127) c.err('bad-value', `invalid volume group name ${JSON.stringify(name)}`);
      if (pvs.length === 0 && !c.has('useexisting')) c.err('missing-value', 'needs at least one physical volume (pv.NAME)');
      if (pvs.length > 0 && c.has('useexisting')) c.err('conflict', 'members may not be given for an existing volume group', c.w('useexisting'));
      if (c.has('useexisting')) c.unsupported('--useexisting reuses an existing volume group; apply makes new ones', c.w('useexisting'));
      const rs = c.int('reserved_space');
      if (rs !== null && rs < 0) c.err('bad-value', `the reserved space must be 0 or more MiB, got ${rs}`, c.w('reserved_space'));
      const rp = c.int('reserved_percent');
      if (rp !== null && (rp < 1 || rp > 99)) c.err('bad-value', `the reserved percentage must be between 1 and 99, got ${rp}`, c.w('reserved_percent'));
      const pesize = c.int('pesize') ?? 4096;
      // pykickstart takes any number; LVM wants a power of two of at least 1 MiB.
      if (pesize < 1024 || (pesize & (pesize - 1)) !== 0) c.unsupported(`--pesize must be a power of two of at least 1024 KiB for LVM, got ${pesize}`, c.w('pesize'));
      ks.volgroups.push({ name, pvs, pesize, useexisting: c.has('useexisting'), at: c.at });
    },
  },

  logvol: {
    options: [
      ...volumeOptions(),
      str('--vgname'),
      str('--name'),
      int('--percent'),
      flag('--useexisting'),
      flag('--noformat', 'useexisting'),
      flag('--thin'),
      flag('--thinpool'),
      str('--poolname'),
      int('--chunksize'),
      int('--metadatasize'),
      str('--profile'),
      int('--cachesize'),
      str('--cachemode', 'cachemode', ['writeback', 'writethrough']),
      list('--cachepvs'),
    ],
    positionals: [1, 1],
    positionalName: 'mount point',
    once: false,
    handle(c, ks) {
      const mnt = c.args[0];
      checkMount(c, mnt, false);
      if (mnt === 'biosboot' || mnt === 'prepboot') c.unsupported(`${mnt} must be a partition, not a logical volume`);
      if (mnt === '/boot' || mnt === '/boot/efi') c.unsupported(`${mnt} must be a partition: the boot loader cannot read LVM`);
      const vgname = c.str('vgname');
      const name = c.str('name');
      if (vgname === null) c.err('missing-option', 'needs --vgname', '--vgname');
      if (name === null) c.err('missing-option', 'needs --name', '--name');
      else if (!VG_RE.test(name)) c.err('bad-value', `invalid logical volume name ${JSON.stringify(name)}`, c.w('name'));
      const fstype = fstypeFor(c, mnt, c.str('fstype'));
      const percent = c.int('percent');
      if (percent !== null && (percent < 1 || percent > 100)) c.err('bad-value', `must be 1-100, got ${percent}`, c.w('percent'));
      if (percent !== null && c.has('size')) c.err('conflict', '--size and --percent are mutually exclusive', c.w('percent'));
      const size = percent !== null ? null : sizeOpts(c, fstype, mnt);
      if (size === null && percent === null && !c.has('useexisting') && !c.has('hibernation') && !c.has('recommended')) {
        c.err('missing-option', 'no size given: use one of --useexisting, --noformat, --size, --percent or --hibernation', '--size');
      }
      volumeNotes(c);
      if (c.has('thin') && c.has('thinpool')) c.err('conflict', '--thin and --thinpool cannot both be given', '--thinpool');
      const cache = ['cachesize', 'cachepvs', 'cachemode'].filter((d) => c.has(d));
      if (cache.length && !c.has('cachepvs')) c.err('missing-option', 'a cache needs --cachepvs (its fast physical volumes)', '--cachepvs');
      else if (cache.length && !c.has('cachesize')) c.err('missing-option', 'a cache needs --cachesize', '--cachesize');
      else if (cache.length && c.has('useexisting')) c.err('conflict', 'adding a cache to an existing logical volume is not supported', c.w('useexisting'));
      else if (cache.length && c.has('thin')) c.err('conflict', 'thin volumes cannot be cached', '--thin');
      if (c.has('cachesize') || c.has('cachepvs')) c.unsupported('LVM cache volumes need device-mapper, which this host lacks', c.w(c.has('cachesize') ? 'cachesize' : 'cachepvs'));
      if (c.has('profile')) c.warn('--profile is ignored by apply', '--profile');
      if (c.has('thin') || c.has('thinpool')) c.unsupported('thin volumes need device-mapper to format the pool, which this host lacks', c.has('thin') ? '--thin' : '--thinpool');
      if (c.has('useexisting')) c.unsupported('--useexisting keeps an existing volume; apply makes new ones', c.w('useexisting'));
      if (c.has('encrypted')) c.unsupported('encryption needs dm-crypt, which this host lacks', '--encrypted');
      if (fstype === 'btrfs') c.unsupported('btrfs is not supported by apply', c.w('fstype'));
      ks.logvols.push({
        mntpoint: mnt,
        vgname: vgname ?? '',
        name: name ?? '',
        fstype,
        size,
        grow: c.has('grow'),
        maxsize: c.int('maxsize'),
        percent,
        label: c.str('label'),
        fsoptions: (checkFsOptions(c), c.str('fsoptions')),
        mkfsoptions: (checkMkfsOptions(c, c.str('mkfsoptions'), c.w('mkfsoptions')), c.str('mkfsoptions')),
        recommended: c.has('recommended'),
        useexisting: c.has('useexisting'),
        thin: c.has('thin') || c.has('thinpool'),
        encrypted: c.has('encrypted'),
        at: c.at,
      });
    },
  },

  ostreesetup: {
    options: [str('--osname'), str('--remote'), str('--url'), str('--ref'), flag('--nogpg')],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      const osname = c.str('osname');
      const url = c.str('url');
      const ref = c.str('ref');
      const remote = c.str('remote') ?? osname;
      for (const [dest, v] of [['osname', osname], ['url', url], ['ref', ref]] as const) if (v === null) c.err('missing-option', `needs --${dest}`, `--${dest}`);
      if (osname !== null && !OSNAME_RE.test(osname)) c.err('bad-value', `invalid OS name ${JSON.stringify(osname)}`, c.w('osname'));
      if (c.str('remote') !== null && !OSNAME_RE.test(c.str('remote')!)) c.err('bad-value', `invalid remote name ${JSON.stringify(c.str('remote'))}`, c.w('remote'));
      if (url !== null && !/^(https?|file):\/\/\S+$/.test(url)) c.err('bad-value', `invalid URL ${JSON.stringify(url)} (http://, https:// or file://)`, c.w('url'));
      // pykickstart takes any ref; one that is not an OSTree ref cannot be pulled here.
      if (ref !== null && (!REF_RE.test(ref) || ref.split('/').includes('..'))) c.unsupported(`${JSON.stringify(ref)} is not an OSTree ref (letters, digits, _ . - between /, and \${basearch})`, c.w('ref'));
      ks.ostreesetup = { osname: osname ?? '', remote: remote ?? '', url: url ?? '', ref: ref ?? '', nogpg: c.has('nogpg'), at: c.at };
    },
  },

  ostreecontainer: {
    options: [str('--url'), str('--stateroot'), str('--remote'), str('--transport', 'transport', ['registry', 'oci', 'oci-archive', 'containers-storage', 'dir', 'docker-archive']), flag('--no-signature-verification', 'nosig')],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      const url = c.str('url');
      if (url === null) c.err('missing-option', 'needs --url', '--url');
      const stateroot = c.str('stateroot');
      if (stateroot !== null && !OSNAME_RE.test(stateroot)) c.err('bad-value', `invalid stateroot ${JSON.stringify(stateroot)}`, c.w('stateroot'));
      c.unsupported('deploying from a container image needs ostree-rs-ext (ostree container image deploy), which Debian\'s ostree 2022.7 lacks; use ostreesetup');
      ks.ostreecontainer = { url: url ?? '', stateroot, remote: c.str('remote'), transport: c.str('transport') ?? 'registry', noSignatureVerification: c.has('nosig'), at: c.at };
    },
  },

  group: {
    options: [str('--name'), int('--gid')],
    positionals: [0, 0],
    once: false,
    handle(c, ks) {
      const name = c.str('name');
      if (name === null) c.err('missing-option', 'needs --name', '--name');
      else if (!USERNAME_RE.test(name)) c.err('bad-value', `invalid group name ${JSON.stringify(name)}`, c.w('name'));
      const gid = c.int('gid');
      if (gid !== null && (gid < 0 || gid > 2 ** 31 - 2)) c.unsupported(`gid ${gid} is out of range`, c.w('gid'));
      const prev = ks.groups.find((g) => g.name === name);
      if (prev) c.warn(`group ${name} is already defined at ${prev.at.file}:${prev.at.line}`, c.w('name'));
      ks.groups.push({ name: name ?? '', gid, at: c.at });
    },
  },

  timesource: {
    options: [str('--ntp-server', 'ntp_server'), str('--ntp-pool', 'ntp_pool'), flag('--ntp-disable', 'ntp_disable'), flag('--nts')],
    positionals: [0, 0],
    once: false,
    handle(c, ks) {
      exactlyOne(c, ['ntp_server', 'ntp_pool', 'ntp_disable']);
      const host = c.str('ntp_server') ?? c.str('ntp_pool');
      if (host !== null && !HOSTNAME_RE.test(host) && !isIPv4(host) && !isIPv6(host)) c.unsupported(`${JSON.stringify(host)} is not a host name or address`, c.w(c.has('ntp_server') ? 'ntp_server' : 'ntp_pool'));
      if (c.has('nts')) c.warn('--nts is not written: systemd-timesyncd has no NTS (the server is used without it)', '--nts');
      if (c.has('ntp_disable')) ks.timesources.push({ kind: 'disable', host: null, nts: false, at: c.at });
      else if (host !== null) ks.timesources.push({ kind: c.has('ntp_pool') ? 'pool' : 'server', host, nts: c.has('nts'), at: c.at });
    },
  },

  ignoredisk: {
    options: [list('--drives'), list('--only-use', 'only_use')],
    positionals: [0, 0],
    once: true,
    handle(c) {
      exactlyOne(c, ['drives', 'only_use']);
      c.warn('noted, not needed: apply provisions the one disk or image it is given');
    },
  },

  url: {
    options: [str('--url'), str('--mirrorlist'), str('--metalink'), str('--proxy'), flag('--noverifyssl'), str('--sslcacert'), str('--sslclientcert'), str('--sslclientkey')],
    positionals: [0, 0],
    once: true,
    handle(c) {
      exactlyOne(c, ['url', 'mirrorlist', 'metalink']);
      c.warn('noted, not used: an atomic host installs the OSTree commit of ostreesetup, not packages from this source');
    },
  },

  repo: {
    options: [
      str('--name'),
      str('--baseurl'),
      str('--mirrorlist'),
      str('--metalink'),
      int('--cost'),
      list('--excludepkgs'),
      list('--includepkgs'),
      str('--proxy'),
      flag('--noverifyssl'),
      flag('--install'),
      str('--sslcacert'),
      str('--sslclientcert'),
      str('--sslclientkey'),
    ],
    positionals: [0, 0],
    once: false,
    handle(c) {
      if (c.str('name') === null) c.err('missing-option', 'needs --name', '--name');
      const urls = ['baseurl', 'mirrorlist', 'metalink'].filter((d) => c.has(d));
      if (urls.length > 1) c.err('conflict', `only one of --baseurl, --mirrorlist, --metalink may be given`, c.w(urls[1]));
      c.warn('noted, not used: an atomic host gets its packages from the OSTree commit (%packages and repo are ignored)');
    },
  },

  reboot: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'reboot') },
  poweroff: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'poweroff') },
  shutdown: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'shutdown') },
  halt: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'halt') },
};

/** pykickstart's aliases (same handler, other name). */
export const ALIASES: Record<string, string> = { partition: 'part' };

/**
 * Anaconda commands outside the atomic-host subset. Valid kickstart (their options are not
 * checked here): those that only steer the installer are noted and ignored; the others
 * would change the installed system in ways apply does not, so it refuses them.
 */
export const INSTALLER_ONLY_COMMANDS = new Set([
  'firstboot', 'eula', 'skipx', 'xconfig', 'vnc', 'logging', 'mediacheck', 'updates', 'driverdisk', 'sshpw', 'autostep', 'interactive',
  'rescue', 'hmc', 'zipl', 'device', 'deviceprobe', 'monitor', 'mouse', 'key', 'install', 'method', 'langsupport', 'lilocheck',
]);
export const OTHER_ANACONDA_COMMANDS = new Set([
  ...INSTALLER_ONLY_COMMANDS,
  'cdrom', 'harddrive', 'nfs', 'liveimg', 'upgrade', 'raid', 'btrfs', 'iscsi', 'iscsiname', 'fcoe', 'zfcp', 'nvdimm', 'module', 'realm',
  'snapshot', 'rhsm', 'syspurpose', 'bootc', 'mount', 'pwpolicy', 'dmraid', 'multipath', 'lilo',
]);

// text, cmdline and graphical are one setting in pykickstart (displaymode): the last wins.
function mode(c: Cmd, ks: Kickstart, value: 'text' | 'cmdline' | 'graphical'): void {
  if (ks.mode) c.warn(`overrides ${ks.mode.value} at ${ks.mode.at.file}:${ks.mode.at.line} (the later one wins)`);
  ks.mode = { value, at: c.at };
}

function auth(c: Cmd, ks: Kickstart, command: 'auth' | 'authconfig' | 'authselect'): void {
  // pykickstart: "The authselect and authconfig commands can't be used at the same time."
  if (ks.auth && (ks.auth.command === 'authselect') !== (command === 'authselect')) c.warn(`overrides ${ks.auth.command} at ${ks.auth.at.file}:${ks.auth.at.line} (the later one wins)`);
  // pykickstart warns from F28 on, where authselect exists (authconfig is gone from F35).
  if (command !== 'authselect' && c.version.index >= VERSIONS.indexOf('F28')) c.warn(`the ${command} command is deprecated, use authselect instead; Anaconda runs it through authselect's compatibility tool`);
  ks.auth = { command, args: c.args, at: c.at };
}

// reboot, poweroff, shutdown and halt are one setting in pykickstart: the last wins.
function finish(c: Cmd, ks: Kickstart, action: 'reboot' | 'poweroff' | 'shutdown' | 'halt'): void {
  if (ks.finish) c.warn(`overrides ${ks.finish.action} at ${ks.finish.at.file}:${ks.finish.at.line} (the later one wins)`);
  ks.finish = { action, eject: c.has('eject'), kexec: c.has('kexec'), at: c.at };
}

/** Flags that share a dest (e.g. --enforcing/--permissive) set one value: as in pykickstart the last one wins. */
function lastWins(c: Cmd, dest: string): void {
  const seen = (c as unknown as { constSeen: Map<string, string[]> }).constSeen.get(dest) ?? [];
  const distinct = [...new Set(seen)];
  if (distinct.length > 1) c.warn(`${distinct.join(' and ')} are alternatives: ${seen[seen.length - 1]} (the last) wins`, seen[seen.length - 1]);
}

/** Exactly one of the options (pykickstart's "One of … must be specified" / "Only one of …"). */
function exactlyOne(c: Cmd, dests: string[]): void {
  const given = dests.filter((d) => c.has(d));
  const names = dests.map((d) => c.w(d)).join(', ');
  if (given.length === 0) c.err('missing-option', `one of ${names} must be given`, c.w(dests[0]));
  else if (given.length > 1) c.err('conflict', `only one of ${names} may be given`, c.w(given[1]));
}

/**
 * pykickstart takes any integer sizes and a part without one (Anaconda then picks a
 * default; the layout here lets it grow); sizes no file system can have are "valid, but
 * not here".
 */
function sizeOpts(c: Cmd, fstype: FsType, _mnt: string): number | null {
  const size = c.int('size');
  if (size !== null && size <= 0) c.unsupported(`a volume needs a positive number of MiB, got ${size}`, c.w('size'));
  const maxsize = c.int('maxsize');
  if (maxsize !== null && maxsize <= 0) c.unsupported(`a volume needs a positive number of MiB, got ${maxsize}`, c.w('maxsize'));
  if (maxsize !== null && !c.has('grow')) c.warn('--maxsize only matters with --grow', c.w('maxsize'));
  if (maxsize !== null && size !== null && maxsize > 0 && maxsize < size) c.unsupported(`--maxsize ${maxsize} is smaller than --size ${size}`, c.w('maxsize'));
  if (c.has('recommended') && c.has('size')) c.warn('--size is ignored with --recommended', '--recommended');
  if (fstype === 'xfs' && size !== null && size > 0 && size < XFS_MIN_MIB && !c.has('grow')) {
    c.unsupported(`an XFS file system needs at least ${XFS_MIN_MIB} MiB, got ${size} (mkfs.xfs refuses smaller)`, c.w('size'));
  }
  return size !== null && size > 0 ? size : null;
}

function isIPv6Prefix(v: string): boolean {
  const [addr, prefix, ...rest] = v.split('/');
  return isIPv6(addr) && rest.length === 0 && (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= 128));
}

function isNetmask(m: string): boolean {
  if (/^\d{1,2}$/.test(m)) return Number(m) <= 32;
  if (!isIPv4(m)) return false;
  const n = m.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const inv = ~n >>> 0;
  return ((inv + 1) & inv) === 0;
}

/** Builds the accessor object a handler sees. */
export function makeCmd(
  name: string,
  at: SourceRef,
  version: KsVersion,
  tokens: string[],
  def: CommandDef,
  sink: { err(kind: ProblemKind, msg: string, option?: string): void; warn(msg: string, option?: string): void; unsupported(msg: string, option?: string): void },
): Cmd | null {
  let failed = false;
  const err = (kind: ProblemKind, msg: string, option?: string) => {
    failed = true;
    sink.err(kind, msg, option);
  };
  // No kickstart value has a use for control characters, and in the files they reach
  // (fstab, passwd, unit and keyfiles, BLS entries) one could end a line or a field.
  tokens.forEach((tok, i) => {
    if (!CONTROL_RE.test(tok)) return;
    const option = tok.startsWith('-') ? tok.split('=')[0] : i > 0 && /^--[^=]+$/.test(tokens[i - 1]) ? tokens[i - 1] : undefined;
    err('bad-value', `a control character is not allowed in a value: ${JSON.stringify(tok)}`, option);
  });
  if (failed) return null;
  const options = def.options.filter((o) => !o.removedIn || version.index < VERSIONS.indexOf(o.removedIn));
  const parsed = def.passthrough ? { opts: new Map<string, OptValue>(), constSeen: new Map<string, string[]>(), args: tokens } : parseOptions(tokens, options, err);
  const specOf = (dest: string) => def.options.find((o) => o.dest === dest);
  const get = (dest: string): OptValue | undefined => parsed.opts.get(dest);
  const [min, max] = def.positionals;
  if (parsed.args.length < min) err('missing-value', `needs ${def.positionalName ?? `${min} argument${min > 1 ? 's' : ''}`}`);
  if (max >= 0 && parsed.args.length > max) {
    err('unexpected-argument', max === 0 ? `takes no arguments (got ${JSON.stringify(parsed.args[0])})` : `unexpected argument ${JSON.stringify(parsed.args[max])}`);
  }
  if (failed && parsed.args.length < min) return null; // the handler cannot run without its positional argument
  for (const o of options) {
    const written = parsed.opts.get(o.dest)?.written;
    if (o.deprecatedIn && written && o.names.includes(written) && version.index >= VERSIONS.indexOf(o.deprecatedIn)) {
      sink.warn(`the ${written} option is deprecated since ${o.deprecatedIn} (pykickstart: it no longer has any effect; timesource replaces the NTP options); atomhost still applies it`, written);
    }
  }
  const cmd: Cmd & { constSeen: Map<string, string[]> } = {
    name,
    at,
    version,
    args: parsed.args,
    constSeen: parsed.constSeen,
    has: (dest) => parsed.opts.has(dest),
    str: (dest) => {
      const v = get(dest)?.value;
      return typeof v === 'string' ? v : null;
    },
    int: (dest) => {
      const v = get(dest)?.value;
      return typeof v === 'number' ? v : null;
    },
    bool: (dest, dflt) => {
      const v = get(dest)?.value;
      return typeof v === 'boolean' ? v : dflt;
    },
    list: (dest) => {
      const v = get(dest)?.value;
      return Array.isArray(v) ? v : [];
    },
    w: (dest) => get(dest)?.written ?? specOf(dest)?.names[0] ?? `--${dest}`,
    err,
    warn: sink.warn,
    unsupported: sink.unsupported,
  };
  return cmd;
}
