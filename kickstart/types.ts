// The parsed kickstart: one typed field per command, each remembering where it was given.
import type { KickstartProblem, SourceRef } from './errors.js';

export interface At {
  at: SourceRef;
}

export interface NetworkSpec extends At {
  bootproto: 'dhcp' | 'bootp' | 'static' | 'query' | 'ibft';
  device: string | null;
  activate: boolean;
  onboot: boolean;
  ip: string | null;
  netmask: string | null;
  gateway: string | null;
  nameservers: string[];
  hostname: string | null;
  ipv6: string | null;
  noipv4: boolean;
  noipv6: boolean;
  mtu: number | null;
  nodefroute: boolean;
  nodns: boolean;
}

export interface UserSpec extends At {
  name: string;
  groups: string[];
  homedir: string | null;
  password: string | null;
  iscrypted: boolean;
  lock: boolean;
  shell: string | null;
  uid: number | null;
  gid: number | null;
  gecos: string | null;
}

export interface SshKeySpec extends At {
  username: string;
  key: string;
}

export type FsType = 'xfs' | 'ext4' | 'ext3' | 'ext2' | 'vfat' | 'efi' | 'swap' | 'biosboot' | 'prepboot' | 'lvmpv' | 'btrfs' | 'tmpfs';

export interface PartSpec extends At {
  /** Mount point, or swap, biosboot, pv.NAME. */
  mntpoint: string;
  fstype: FsType;
  /** MiB; null when only --grow/--recommended gives the size. */
  size: number | null;
  grow: boolean;
  maxsize: number | null;
  label: string | null;
  fsoptions: string | null;
  mkfsoptions: string | null;
  ondisk: string | null;
  asprimary: boolean;
  noformat: boolean;
  onpart: string | null;
  recommended: boolean;
  encrypted: boolean;
}

export interface VolGroupSpec extends At {
  name: string;
  pvs: string[];
  pesize: number; // KiB
  useexisting: boolean;
}

export interface LogVolSpec extends At {
  mntpoint: string;
  vgname: string;
  name: string;
  fstype: FsType;
  size: number | null;
  grow: boolean;
  maxsize: number | null;
  percent: number | null;
  label: string | null;
  fsoptions: string | null;
  mkfsoptions: string | null;
  recommended: boolean;
  useexisting: boolean;
  thin: boolean;
  encrypted: boolean;
}

export interface ScriptSpec extends At {
  kind: 'pre' | 'post';
  body: string;
  interpreter: string;
  nochroot: boolean;
  erroronfail: boolean;
  log: string | null;
}

export interface Kickstart {
  /** Every file read, the first being the main one. */
  files: string[];
  mode: ({ value: 'text' | 'cmdline' | 'graphical' } & At) | null;
  lang: ({ lang: string; addsupport: string[] } & At) | null;
  keyboard: ({ layout: string | null; vckeymap: string | null; xlayouts: string[] } & At) | null;
  /** timezone: '' when only options were given (`timezone --utc`). */
  timezone: ({ timezone: string; utc: boolean; nontp: boolean; ntpservers: string[] } & At) | null;
  auth: ({ command: 'auth' | 'authconfig' | 'authselect'; args: string[] } & At) | null;
  selinux: ({ mode: 'enforcing' | 'permissive' | 'disabled' } & At) | null;
  firewall: ({ enabled: boolean; services: string[]; ports: string[]; trust: string[]; removeServices: string[]; useSystemDefaults: boolean } & At) | null;
  network: NetworkSpec[];
  rootpw: ({ password: string | null; iscrypted: boolean; lock: boolean; allowSsh: boolean } & At) | null;
  users: UserSpec[];
  sshkeys: SshKeySpec[];
  services: ({ enabled: string[]; disabled: string[] } & At) | null;
  bootloader: ({ timeout: number | null; append: string[]; location: 'mbr' | 'partition' | 'none' | 'boot'; bootDrive: string | null; disabled: boolean } & At) | null;
  zerombr: At | null;
  clearpart: ({ which: 'all' | 'none' | 'linux' | 'list'; list: string[]; drives: string[]; initlabel: boolean; disklabel: 'gpt' | 'msdos' | null } & At) | null;
  reqpart: ({ addBoot: boolean } & At) | null;
  autopart: ({ type: 'lvm' | 'plain' | 'thinp' | 'btrfs'; fstype: FsType | null; nohome: boolean; noboot: boolean; noswap: boolean; encrypted: boolean } & At) | null;
  parts: PartSpec[];
  volgroups: VolGroupSpec[];
  logvols: LogVolSpec[];
  ostreesetup: ({ osname: string; remote: string; url: string; ref: string; nogpg: boolean } & At) | null;
  ostreecontainer: ({ url: string; stateroot: string | null; remote: string | null; transport: string; noSignatureVerification: boolean } & At) | null;
  finish: ({ action: 'reboot' | 'poweroff' | 'halt' | 'shutdown'; eject: boolean; kexec: boolean } & At) | null;
  pre: ScriptSpec[];
  post: ScriptSpec[];
  packages: ({ lines: string[] } & At) | null;
  groups: ({ name: string; gid: number | null } & At)[];
  /** timesource lines: NTP servers or pools, or --ntp-disable. */
  timesources: ({ kind: 'server' | 'pool' | 'disable'; host: string | null; nts: boolean } & At)[];
  /** The kickstart version the file was judged by (pykickstart's name, e.g. F45). */
  version: string;
  /** Not errors: things valid in a kickstart that apply ignores or cannot do. */
  warnings: KickstartProblem[];
  /** Valid kickstart that `apply` cannot do on this host (it refuses before touching a disk). */
  unsupported: KickstartProblem[];
}

/** A `network --hostname=…` line that configures no device (Anaconda's host-name-only form). */
export function isHostnameOnly(n: NetworkSpec): boolean {
  return n.hostname !== null && n.device === null && n.ip === null && n.bootproto === 'dhcp' && !n.activate;
}

/** The host name the kickstart sets: the last --hostname wins. */
export function hostnameOf(ks: Kickstart): string | null {
  return [...ks.network].reverse().find((n) => n.hostname)?.hostname ?? null;
}

export function emptyKickstart(): Kickstart {
  return {
    files: [],
    mode: null,
    lang: null,
    keyboard: null,
    timezone: null,
    auth: null,
    selinux: null,
    firewall: null,
    network: [],
    rootpw: null,
    users: [],
    sshkeys: [],
    services: null,
    bootloader: null,
    zerombr: null,
    clearpart: null,
    reqpart: null,
    autopart: null,
    parts: [],
    volgroups: [],
    logvols: [],
    ostreesetup: null,
    ostreecontainer: null,
    finish: null,
    pre: [],
    post: [],
    packages: null,
    groups: [],
    timesources: [],
    version: '',
    warnings: [],
    unsupported: [],
  };
}
