// The kickstart commands atomhost knows: their options (spelled, aliased and defaulted as
// pykickstart's current handlers do where they overlap) and the checks of their values.
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { ProblemKind, SourceRef } from './errors.js';
import { parseOptions, type OptSpec, type OptValue } from './options.js';
import type { FsType, Kickstart, NetworkSpec } from './types.js';

export interface Cmd {
  name: string;
  at: SourceRef;
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
  /** May appear only once. */
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
function destOf(name: string): string {
  return name.replace(/^--?/, '').replace(/-/g, '_');
}

export const FSTYPES: readonly FsType[] = ['xfs', 'ext4', 'ext3', 'ext2', 'vfat', 'efi', 'swap', 'biosboot', 'prepboot', 'btrfs'];
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const USERNAME_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
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
const REF_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
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
  if (v !== null && /\s|#/.test(v)) c.err('bad-value', `invalid mount options ${JSON.stringify(v)} (comma-separated, no spaces or #: they would change the /etc/fstab line)`, c.w('fsoptions'));
}

function checkMount(c: Cmd, mnt: string, allowPv: boolean): void {
  if (mnt === 'swap' || mnt === 'biosboot' || mnt === 'prepboot' || mnt === 'None' || mnt === 'none') return;
  if (allowPv && /^pv\.[A-Za-z0-9_.-]+$/.test(mnt)) return;
  if (/^raid\./.test(mnt)) {
    c.err('bad-value', `software RAID members (${mnt}) are not in the atomic-host subset (no raid command)`);
    return;
  }
  if (allowPv && /^pv\./.test(mnt)) {
    c.err('bad-value', `invalid physical volume name ${JSON.stringify(mnt)}`);
    return;
  }
  if (!mnt.startsWith('/')) c.err('bad-value', `mount point ${JSON.stringify(mnt)} must be an absolute path, swap, biosboot${allowPv ? ' or pv.NAME' : ''}`);
  else if (mnt.split('/').some((s) => s === '..' || s === '.')) c.err('bad-value', `mount point ${JSON.stringify(mnt)} must not contain . or ..`);
}

function fstypeFor(c: Cmd, mnt: string, given: string | null): FsType {
  if (mnt === 'swap') {
    if (given && given !== 'swap') c.err('conflict', `a swap partition cannot have --fstype=${given}`, c.w('fstype'));
    return 'swap';
  }
  if (mnt === 'biosboot') return 'biosboot';
  if (mnt === 'prepboot') return 'prepboot';
  if (/^pv\./.test(mnt)) {
    if (given) c.err('conflict', `a physical volume (${mnt}) takes no --fstype`, c.w('fstype'));
    return 'lvmpv';
  }
  if (given === 'swap') c.err('conflict', `--fstype=swap needs the mount point "swap", not ${mnt}`, c.w('fstype'));
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
  str('--fstype', 'fstype', FSTYPES),
  str('--label'),
  str('--fsoptions'),
  str('--mkfsoptions'),
  flag('--recommended'),
  flag('--encrypted'),
  str('--passphrase'),
];

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
    options: [flag(['--utc', '--isUtc'], 'utc'), flag('--nontp'), list('--ntpservers')],
    positionals: [1, 1],
    positionalName: 'time zone (e.g. Europe/Paris)',
    once: true,
    handle(c, ks) {
      const tz = c.args[0];
      if (!TZ_RE.test(tz)) c.err('bad-value', `invalid time zone ${JSON.stringify(tz)} (expected e.g. America/New_York or UTC)`);
      // Anaconda checks the zone against the tz database; so does atomhost where one is installed.
      else if (existsSync('/usr/share/zoneinfo/UTC') && !existsSync(`/usr/share/zoneinfo/${tz}`)) c.err('bad-value', `unknown time zone ${JSON.stringify(tz)} (not in the tz database)`);
      if (c.has('nontp') && c.has('ntpservers')) c.err('conflict', 'Options --nontp and --ntpservers are mutually exclusive', c.w('ntpservers'));
      for (const s of c.list('ntpservers')) if (!HOSTNAME_RE.test(s) && !isIPv4(s) && !isIPv6(s)) c.err('bad-value', `invalid NTP server ${JSON.stringify(s)}`, c.w('ntpservers'));
      ks.timezone = { timezone: tz, utc: c.has('utc'), nontp: c.has('nontp'), ntpservers: c.list('ntpservers'), at: c.at };
    },
  },

  auth: { options: [], passthrough: true, positionals: [0, -1], once: true, handle: (c, ks) => auth(c, ks, 'auth') },
  authconfig: { options: [], passthrough: true, positionals: [0, -1], once: true, handle: (c, ks) => auth(c, ks, 'authconfig') },
  authselect: { options: [], passthrough: true, positionals: [1, -1], once: true, handle: (c, ks) => auth(c, ks, 'authselect') },

  selinux: {
    options: [flag('--enforcing', 'mode', 'enforcing'), flag('--permissive', 'mode', 'permissive'), flag('--disabled', 'mode', 'disabled')],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      oneOf(c, 'mode');
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
      flag('--telnet'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      oneOf(c, 'state');
      const services = [...c.list('services')];
      for (const s of ['ssh', 'http', 'smtp', 'ftp', 'telnet']) if (c.has(s)) services.push(s);
      // pykickstart reads a port without a protocol as PORT:tcp.
      const ports = c.list('ports').map((p) => (p.includes(':') ? p : `${p}:tcp`));
      for (const p of ports) checkPort(c, p);
      for (const s of c.list('services')) if (!FW_SERVICE_RE.test(s)) c.err('bad-value', `invalid service ${JSON.stringify(s)} (a firewalld service name such as ssh)`, c.w('services'));
      for (const s of c.list('remove')) if (!FW_SERVICE_RE.test(s)) c.err('bad-value', `invalid service ${JSON.stringify(s)} (a firewalld service name such as ssh)`, c.w('remove'));
      for (const d of c.list('trust')) if (!IFNAME_RE.test(d)) c.err('bad-value', `invalid interface ${JSON.stringify(d)} (an interface name such as eth0)`, c.w('trust'));
      const enabled = c.str('state') !== 'disabled';
      if (!enabled && (services.length || ports.length)) c.err('conflict', 'cannot open services or ports on a disabled firewall', c.w('state'));
      ks.firewall = { enabled, services, ports, trust: c.list('trust'), removeServices: c.list('remove'), useSystemDefaults: c.has('use_system_defaults'), at: c.at };
    },
  },

  network: {
    options: [
      str('--bootproto', 'bootproto', ['dhcp', 'bootp', 'static', 'query', 'ibft']),
      str('--device'),
      flag('--activate'),
      flag('--no-activate', 'no_activate'),
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
    ],
    positionals: [0, 0],
    once: false,
    handle(c, ks) {
      const bootproto = (c.str('bootproto') ?? 'dhcp') as NetworkSpec['bootproto'];
      const ip = c.str('ip');
      const netmask = c.str('netmask');
      const hostname = c.str('hostname');
      if (bootproto === 'static' && !ip && !c.has('noipv4')) c.err('missing-option', '--bootproto=static needs --ip', '--ip');
      if (bootproto === 'static' && ip && !netmask) c.err('missing-option', '--bootproto=static needs --netmask', '--netmask');
      if (ip && bootproto !== 'static') c.err('conflict', `--ip needs --bootproto=static (it is ${bootproto})`, c.w('ip'));
      if (ip && !isIPv4(ip)) c.err('bad-value', `invalid IPv4 address ${JSON.stringify(ip)}`, c.w('ip'));
      if (netmask && !isNetmask(netmask)) c.err('bad-value', `invalid netmask ${JSON.stringify(netmask)} (a dotted mask like 255.255.255.0 or a prefix length)`, c.w('netmask'));
      const gw = c.str('gateway');
      if (gw && !isIPv4(gw)) c.err('bad-value', `invalid IPv4 gateway ${JSON.stringify(gw)}`, c.w('gateway'));
      for (const n of c.list('nameserver')) if (!isIPv4(n) && !isIPv6(n)) c.err('bad-value', `invalid name server ${JSON.stringify(n)}`, c.w('nameserver'));
      if (hostname !== null && !HOSTNAME_RE.test(hostname)) c.err('bad-value', `invalid host name ${JSON.stringify(hostname)} (letters, digits, '-' and '.', labels of 1-63 characters)`, c.w('hostname'));
      const ipv6 = c.str('ipv6');
      if (ipv6 && ipv6 !== 'auto' && ipv6 !== 'dhcp' && !isIPv6Prefix(ipv6)) c.err('bad-value', `invalid --ipv6 ${JSON.stringify(ipv6)} (auto, dhcp or ADDRESS[/PREFIX])`, c.w('ipv6'));
      const gw6 = c.str('ipv6gateway');
      if (gw6 && !isIPv6(gw6)) c.err('bad-value', `invalid IPv6 gateway ${JSON.stringify(gw6)}`, c.w('ipv6gateway'));
      const ifname = c.str('interfacename');
      if (ifname && !IFNAME_RE.test(ifname)) c.err('bad-value', `invalid interface name ${JSON.stringify(ifname)} (at most 15 letters, digits, _ . : -)`, c.w('interfacename'));
      const dev = c.str('device');
      if (dev && !IFNAME_RE.test(dev) && !MAC_RE.test(dev)) c.err('bad-value', `invalid device ${JSON.stringify(dev)} (an interface name, a MAC address, link or bootif)`, c.w('device'));
      const mtu = c.int('mtu');
      if (mtu !== null && (mtu < 68 || mtu > 65536)) c.err('bad-value', `MTU ${mtu} is out of range (68-65536)`, c.w('mtu'));
      if (c.has('activate') && c.has('no_activate')) c.err('conflict', '--activate and --no-activate are mutually exclusive', '--no-activate');
      ks.network.push({
        bootproto,
        device: dev,
        activate: c.has('activate'),
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
    options: [flag('--iscrypted'), flag('--plaintext'), flag('--lock'), flag('--allow-ssh', 'allow_ssh')],
    positionals: [0, 1],
    once: true,
    handle(c, ks) {
      const password = c.args[0] ?? null;
      if (password === null && !c.has('lock')) c.err('missing-value', 'needs a password (or --lock)');
      if (c.has('iscrypted') && c.has('plaintext')) c.err('conflict', '--iscrypted and --plaintext are mutually exclusive', '--plaintext');
      // pykickstart takes any string with --iscrypted and Anaconda writes it as given (Fedora's
      // `rootpw --iscrypted --lock locked`): no password can match a value that is not a hash.
      if (password !== null && c.has('iscrypted') && !CRYPT_RE.test(password) && !c.has('lock')) {
        c.warn(`${JSON.stringify(password)} is not a crypt(3) hash: no password will match it, so root cannot log in with one`, '--iscrypted');
      }
      // A plain-text password is hashed before it reaches /etc/shadow, so ":" is fine in it.
      if (c.has('iscrypted')) checkField(c, password, '--iscrypted');
      ks.rootpw = { password, iscrypted: c.has('iscrypted'), lock: c.has('lock'), allowSsh: c.has('allow_ssh'), at: c.at };
    },
  },

  user: {
    options: [
      str('--name'),
      list('--groups'),
      str('--homedir'),
      str('--password'),
      flag('--iscrypted'),
      flag('--plaintext'),
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
      else if (name === 'root') c.err('bad-value', 'the root account is set with rootpw, not user', c.w('name'));
      for (const g of c.list('groups')) if (!USERNAME_RE.test(g)) c.err('bad-value', `invalid group name ${JSON.stringify(g)}`, c.w('groups'));
      if (c.has('iscrypted') && c.has('plaintext')) c.err('conflict', '--iscrypted and --plaintext are mutually exclusive', '--plaintext');
      const password = c.str('password');
      if ((c.has('iscrypted') || c.has('plaintext')) && password === null) c.err('missing-option', `${c.has('iscrypted') ? '--iscrypted' : '--plaintext'} needs --password`, '--password');
      if (password !== null && c.has('iscrypted') && !CRYPT_RE.test(password)) c.err('bad-value', 'with --iscrypted the password must be a crypt(3) hash', c.w('password'));
      for (const dest of ['homedir', 'shell', 'gecos'] as const) checkField(c, c.str(dest), c.w(dest));
      if (c.has('iscrypted')) checkField(c, password, c.w('password'));
      for (const dest of ['homedir', 'shell'] as const) {
        const v = c.str(dest);
        if (v === null) continue;
        if (!v.startsWith('/')) c.err('bad-value', `must be an absolute path, got ${JSON.stringify(v)}`, c.w(dest));
        else if (v.split('/').includes('..')) c.err('bad-value', `must not contain .. components, got ${JSON.stringify(v)}`, c.w(dest));
      }
      for (const dest of ['uid', 'gid'] as const) {
        const v = c.int(dest);
        if (v !== null && (v < 0 || v > 2 ** 31 - 2)) c.err('bad-value', `${v} is out of range`, c.w(dest));
      }
      ks.users.push({
        name: name ?? '',
        groups: c.list('groups'),
        homedir: c.str('homedir'),
        password,
        iscrypted: c.has('iscrypted'),
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
      if (key !== undefined && (!SSHKEY_RE.test(key) || /\n/.test(key))) c.err('bad-value', 'not an OpenSSH public key (expected "ssh-ed25519 AAAA... comment"; quote it)');
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
      for (const s of enabled) if (disabled.includes(s)) c.err('conflict', `${s} is both enabled and disabled`, '--disabled');
      ks.services = { enabled, disabled, at: c.at };
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
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      const timeout = c.int('timeout');
      if (timeout !== null && timeout < 0) c.err('bad-value', 'must be 0 or more seconds', c.w('timeout'));
      const append = c.str('append') ?? '';
      const words = append.split(/\s+/).filter(Boolean);
      for (const wd of words) if (/^(ostree|root)=/.test(wd)) c.err('conflict', `${wd.split('=')[0]}= is set by the installer, not by --append`, c.w('append'));
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
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      oneOf(c, 'which');
      if (c.has('list') && c.has('which')) c.err('conflict', `--list and ${c.w('which')} are mutually exclusive`, '--list');
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
      str('--type', 'type', ['lvm', 'plain', 'thinp', 'btrfs']),
      flag('--nolvm'),
      str('--fstype', 'fstype', FSTYPES),
      flag('--nohome'),
      flag('--noboot'),
      flag('--noswap'),
      flag('--encrypted'),
      str('--passphrase'),
    ],
    positionals: [0, 0],
    once: true,
    handle(c, ks) {
      if (c.has('nolvm') && c.has('type') && c.str('type') !== 'plain') c.err('conflict', `--nolvm and --type=${c.str('type')} are mutually exclusive`, '--nolvm');
      const type = (c.has('nolvm') ? 'plain' : (c.str('type') ?? 'lvm')) as 'lvm' | 'plain' | 'thinp' | 'btrfs';
      const fstype = c.str('fstype') as FsType | null;
      if (fstype && ['swap', 'biosboot', 'prepboot', 'efi', 'vfat'].includes(fstype)) c.err('bad-value', `--fstype=${fstype} cannot hold the root file system`, c.w('fstype'));
      if (type === 'thinp') c.unsupported('thin provisioning needs device-mapper to format the pool, which this host lacks', c.w('type'));
      if (type === 'btrfs' || fstype === 'btrfs') c.unsupported('btrfs is not supported by apply', c.w('type'));
      if (c.has('encrypted')) c.unsupported('encryption needs dm-crypt, which this host lacks', '--encrypted');
      ks.autopart = { type, fstype, nohome: c.has('nohome'), noboot: c.has('noboot'), noswap: c.has('noswap'), encrypted: c.has('encrypted'), at: c.at };
    },
  },

  part: {
    options: [...volumeOptions(), str(['--ondisk', '--ondrive'], 'ondisk'), flag('--asprimary'), flag('--noformat'), str(['--onpart', '--usepart'], 'onpart')],
    positionals: [1, 1],
    positionalName: 'mount point',
    once: false,
    handle(c, ks) {
      const mnt = c.args[0];
      checkMount(c, mnt, true);
      const fstype = fstypeFor(c, mnt, c.str('fstype'));
      const size = sizeOpts(c, fstype, mnt);
      if (c.has('onpart')) c.unsupported('--onpart reuses an existing partition; apply makes a new partition table', c.w('onpart'));
      if (c.has('noformat')) c.unsupported('--noformat keeps an existing file system; apply makes new ones', '--noformat');
      if (c.has('encrypted')) c.unsupported('encryption needs dm-crypt, which this host lacks', '--encrypted');
      if (fstype === 'btrfs') c.unsupported('btrfs is not supported by apply', c.w('fstype'));
      if (fstype === 'prepboot') c.unsupported('PReP boot partitions are for POWER; apply makes x86_64 images', c.w('fstype'));
      const label = c.str('label');
      if (label !== null && (label.length > 16 || /[\s/]/.test(label))) c.err('bad-value', `invalid label ${JSON.stringify(label)} (at most 16 characters, no spaces or /)`, c.w('label'));
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
      if (c.has('useexisting')) c.unsupported('--useexisting reuses an existing volume group; apply makes new ones', c.w('useexisting'));
      const pesize = c.int('pesize') ?? 4096;
      if (pesize < 1024 || (pesize & (pesize - 1)) !== 0) c.err('bad-value', `--pesize must be a power of two of at least 1024 KiB, got ${pesize}`, c.w('pesize'));
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
    ],
    positionals: [1, 1],
    positionalName: 'mount point',
    once: false,
    handle(c, ks) {
      const mnt = c.args[0];
      checkMount(c, mnt, false);
      if (mnt === 'biosboot' || mnt === 'prepboot') c.err('bad-value', `${mnt} must be a partition, not a logical volume`);
      if (mnt === '/boot' || mnt === '/boot/efi') c.err('bad-value', `${mnt} must be a partition: the boot loader cannot read LVM`);
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
      if (ref !== null && (!REF_RE.test(ref) || ref.split('/').includes('..'))) c.err('bad-value', `invalid ref ${JSON.stringify(ref)}`, c.w('ref'));
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

  reboot: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'reboot') },
  poweroff: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'poweroff') },
  shutdown: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'shutdown') },
  halt: { options: [flag('--eject'), flag('--kexec')], positionals: [0, 0], once: false, handle: (c, ks) => finish(c, ks, 'halt') },
};

/** pykickstart's aliases (same handler, other name). */
export const ALIASES: Record<string, string> = { partition: 'part' };

/** Anaconda commands outside the atomic-host subset, named as such rather than as unknown. */
export const OTHER_ANACONDA_COMMANDS = new Set([
  'url', 'repo', 'cdrom', 'harddrive', 'nfs', 'liveimg', 'install', 'upgrade', 'ignoredisk', 'raid', 'btrfs', 'iscsi', 'iscsiname', 'fcoe', 'zfcp',
  'nvdimm', 'firstboot', 'eula', 'skipx', 'xconfig', 'vnc', 'logging', 'mediacheck', 'module', 'realm', 'snapshot', 'driverdisk', 'zipl',
  'rhsm', 'syspurpose', 'sshpw', 'group', 'timesource', 'updates', 'device', 'deviceprobe', 'monitor', 'mouse', 'interactive', 'autostep',
  'method', 'rescue', 'bootc', 'mount', 'pwpolicy', 'hmc', 'dmraid', 'multipath', 'lilo', 'lilocheck', 'key',
]);

function mode(c: Cmd, ks: Kickstart, value: 'text' | 'cmdline' | 'graphical'): void {
  if (ks.mode && ks.mode.value !== value) c.err('conflict', `${value} conflicts with ${ks.mode.value} at ${ks.mode.at.file}:${ks.mode.at.line} (one display mode only)`);
  ks.mode = { value, at: c.at };
}

function auth(c: Cmd, ks: Kickstart, command: 'auth' | 'authconfig' | 'authselect'): void {
  if (ks.auth && ks.auth.command !== command) c.err('conflict', `${command} conflicts with ${ks.auth.command} at ${ks.auth.at.file}:${ks.auth.at.line}`);
  if (command !== 'authselect') c.warn(`${command} (authconfig) is deprecated; Anaconda runs it through authselect's compatibility tool`);
  ks.auth = { command, args: c.args, at: c.at };
}

function finish(c: Cmd, ks: Kickstart, action: 'reboot' | 'poweroff' | 'shutdown' | 'halt'): void {
  if (ks.finish && ks.finish.action !== action) c.err('conflict', `${action} conflicts with ${ks.finish.action} at ${ks.finish.at.file}:${ks.finish.at.line}`);
  else if (ks.finish) c.err('duplicate', `given twice (first at ${ks.finish.at.file}:${ks.finish.at.line})`);
  ks.finish = { action, eject: c.has('eject'), kexec: c.has('kexec'), at: c.at };
}

/** Flags that share a dest (e.g. --enforcing/--permissive) are alternatives: two is a conflict. */
function oneOf(c: Cmd, dest: string): void {
  const seen = (c as unknown as { constSeen: Map<string, string[]> }).constSeen.get(dest) ?? [];
  const distinct = [...new Set(seen)];
  if (distinct.length > 1) c.err('conflict', `${distinct.join(' and ')} are mutually exclusive`, distinct[1]);
}

function sizeOpts(c: Cmd, fstype: FsType, mnt: string): number | null {
  const size = c.int('size');
  if (size !== null && size <= 0) c.err('bad-value', `must be a positive number of MiB, got ${size}`, c.w('size'));
  const maxsize = c.int('maxsize');
  if (maxsize !== null && maxsize <= 0) c.err('bad-value', `must be a positive number of MiB, got ${maxsize}`, c.w('maxsize'));
  if (maxsize !== null && !c.has('grow')) c.warn('--maxsize only matters with --grow', c.w('maxsize'));
  if (maxsize !== null && size !== null && maxsize < size) c.err('conflict', `--maxsize ${maxsize} is smaller than --size ${size}`, c.w('maxsize'));
  const special = fstype === 'biosboot' || fstype === 'efi' || fstype === 'prepboot' || mnt === 'swap';
  if (size === null && !c.has('grow') && !c.has('recommended') && !c.has('onpart') && !c.has('useexisting') && !special) {
    c.err('missing-option', 'needs --size (MiB), --grow or --recommended', '--size');
  }
  if (c.has('recommended') && c.has('size')) c.err('conflict', '--recommended and --size are mutually exclusive', '--recommended');
  if (fstype === 'xfs' && size !== null && size > 0 && size < XFS_MIN_MIB && !c.has('grow')) {
    c.err('bad-value', `an XFS file system needs at least ${XFS_MIN_MIB} MiB, got ${size} (use --fstype=ext4 or a larger --size)`, c.w('size'));
  }
  return size;
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
  const parsed = def.passthrough ? { opts: new Map<string, OptValue>(), constSeen: new Map<string, string[]>(), args: tokens } : parseOptions(tokens, def.options, err);
  const specOf = (dest: string) => def.options.find((o) => o.dest === dest);
  const get = (dest: string): OptValue | undefined => parsed.opts.get(dest);
  const [min, max] = def.positionals;
  if (parsed.args.length < min) err('missing-value', `needs ${def.positionalName ?? `${min} argument${min > 1 ? 's' : ''}`}`);
  if (max >= 0 && parsed.args.length > max) {
    err('unexpected-argument', max === 0 ? `takes no arguments (got ${JSON.stringify(parsed.args[0])})` : `unexpected argument ${JSON.stringify(parsed.args[max])}`);
  }
  if (failed && parsed.args.length < min) return null; // the handler cannot run without its positional argument
  const cmd: Cmd & { constSeen: Map<string, string[]> } = {
    name,
    at,
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
