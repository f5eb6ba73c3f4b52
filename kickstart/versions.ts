// Kickstart syntax versions as pykickstart names them (F7 … F45, RHEL3 … RHEL11) and, per
// version, which commands exist. The table is pykickstart 3.74's handlers/control.py read
// as data: for each command, the versions (in pykickstart's numeric order) where its state
// changes — o: present, d: deprecated (accepted with a warning), r: removed (an error
// naming the version), a: absent (unknown). `validate --version` picks one; F45 (DEVEL in
// pykickstart) is the default.

/** pykickstart's versions in its numeric order (RHELn sits just after the Fedora it forked from). */
export const VERSIONS = 'RHEL3 FC3 RHEL4 FC4 FC5 FC6 RHEL5 F7 F8 F9 F10 F11 F12 F13 RHEL6 F14 F15 F16 F17 F18 F19 F20 F21 RHEL7 F22 F23 F24 F25 F26 F27 F28 RHEL8 F29 F30 F31 F32 F33 F34 RHEL9 F35 F36 F37 F38 F39 F40 RHEL10 F41 F42 F43 F44 F45 RHEL11'.split(' ');

/** pykickstart's DEVEL. */
export const DEFAULT_VERSION = 'F45';

export type CommandState = 'present' | 'deprecated' | 'removed' | 'absent';

const TABLE: Record<string, string> = {
  auth: 'RHEL3:o F35:r',
  authconfig: 'RHEL3:o F35:r',
  authselect: 'RHEL3:a F28:o',
  autopart: 'RHEL3:o',
  autostep: 'RHEL3:o F34:d F40:r',
  bootc: 'RHEL3:a RHEL10:o F41:a F43:o',
  bootloader: 'RHEL3:o',
  btrfs: 'RHEL3:a F17:o RHEL8:d F29:o RHEL9:d F35:o RHEL10:r F41:o RHEL11:r',
  cdrom: 'RHEL3:o',
  clearpart: 'RHEL3:o',
  cmdline: 'RHEL3:o',
  device: 'RHEL3:o F24:d F34:r',
  deviceprobe: 'RHEL3:o RHEL8:d F34:r',
  dmraid: 'RHEL3:a FC6:o F24:d F34:r',
  driverdisk: 'RHEL3:o',
  eula: 'RHEL3:a F20:o',
  fcoe: 'RHEL3:a F12:o',
  firewall: 'RHEL3:o',
  firstboot: 'RHEL3:o',
  graphical: 'RHEL3:o',
  group: 'RHEL3:a F12:o',
  halt: 'RHEL3:o',
  harddrive: 'RHEL3:o',
  hmc: 'RHEL3:a RHEL7:o F22:a F28:o',
  ignoredisk: 'RHEL3:o',
  install: 'RHEL3:o RHEL8:d F34:r',
  interactive: 'RHEL3:o F14:d F15:r F16:a',
  iscsi: 'RHEL3:a FC6:o',
  iscsiname: 'RHEL3:a FC6:o',
  key: 'RHEL3:a RHEL5:o F7:a RHEL6:o F14:a',
  keyboard: 'RHEL3:o',
  lang: 'RHEL3:o',
  langsupport: 'RHEL3:o FC5:d F7:r F8:a',
  lilo: 'RHEL3:o FC4:r FC5:a',
  lilocheck: 'RHEL3:o FC4:r FC5:a',
  liveimg: 'RHEL3:a F19:o',
  logging: 'RHEL3:a FC6:o',
  logvol: 'RHEL3:o',
  mediacheck: 'RHEL3:a FC4:o',
  method: 'RHEL3:o F34:d F40:r',
  module: 'RHEL3:a RHEL8:o RHEL10:d F45:r',
  monitor: 'RHEL3:o F10:d F18:r F19:a',
  mount: 'RHEL3:a F27:o',
  mouse: 'RHEL3:o FC3:d F7:r F8:a',
  multipath: 'RHEL3:a FC6:o F24:d F34:r',
  network: 'RHEL3:o',
  nfs: 'RHEL3:o',
  nvdimm: 'RHEL3:a RHEL7:o F22:a F28:o F40:d RHEL10:r F41:d F45:r',
  ostreecontainer: 'RHEL3:a RHEL9:o F35:a F38:o',
  ostreesetup: 'RHEL3:a F21:o',
  part: 'RHEL3:o',
  partition: 'RHEL3:o',
  poweroff: 'RHEL3:o',
  raid: 'RHEL3:o',
  realm: 'RHEL3:a F19:o',
  reboot: 'RHEL3:o',
  repo: 'RHEL3:a FC6:o',
  reqpart: 'RHEL3:a RHEL7:o F22:a F23:o',
  rescue: 'RHEL3:a F10:o',
  rhsm: 'RHEL3:a RHEL8:o F29:a RHEL9:o F35:a RHEL10:o F41:a RHEL11:o',
  rootpw: 'RHEL3:o',
  selinux: 'RHEL3:a FC3:o',
  services: 'RHEL3:a FC6:o',
  shutdown: 'RHEL3:o',
  skipx: 'RHEL3:o',
  snapshot: 'RHEL3:a RHEL7:o F22:a F26:o',
  sshkey: 'RHEL3:a F22:o',
  sshpw: 'RHEL3:a F13:o',
  syspurpose: 'RHEL3:a RHEL8:o F29:a RHEL9:o F35:a RHEL10:o F41:a RHEL11:o',
  text: 'RHEL3:o',
  timesource: 'RHEL3:a F33:o',
  timezone: 'RHEL3:o',
  updates: 'RHEL3:a F7:o',
  upgrade: 'RHEL3:o F20:d RHEL8:a F29:r F30:a',
  url: 'RHEL3:o',
  user: 'RHEL3:a FC6:o',
  vnc: 'RHEL3:o RHEL10:d F41:o F43:d F45:r',
  volgroup: 'RHEL3:o',
  xconfig: 'RHEL3:o',
  zerombr: 'RHEL3:o',
  zfcp: 'RHEL3:a FC3:o',
  zipl: 'RHEL3:a RHEL8:o F29:a F32:o',
};

const STATES: Record<string, CommandState> = { o: 'present', d: 'deprecated', r: 'removed', a: 'absent' };

export interface KsVersion {
  name: string;
  index: number;
}

/** A version as written by the user (f40, F40, rhel9, DEVEL), or null when pykickstart has no such version. */
export function parseVersion(written: string): KsVersion | null {
  const w = written.trim().toUpperCase();
  const name = w === 'DEVEL' ? DEFAULT_VERSION : w.replace(/^FEDORA/, 'F');
  const index = VERSIONS.indexOf(name);
  return index < 0 ? null : { name, index };
}

export const defaultVersion = (): KsVersion => parseVersion(DEFAULT_VERSION)!;

/** The command's state in a version; commands outside the table are 'absent'. */
export function commandState(command: string, v: KsVersion): CommandState {
  const row = TABLE[command];
  if (!row) return 'absent';
  let state: CommandState = 'absent';
  for (const step of row.split(' ')) {
    const [name, s] = step.split(':');
    if (VERSIONS.indexOf(name) > v.index) break;
    state = STATES[s];
  }
  return state;
}

/** The first version from which the command is removed (for messages), or null. */
export function removedSince(command: string, v: KsVersion): string | null {
  const row = TABLE[command];
  if (!row) return null;
  let since: string | null = null;
  for (const step of row.split(' ')) {
    const [name, s] = step.split(':');
    if (VERSIONS.indexOf(name) > v.index) break;
    since = s === 'r' ? name : null;
  }
  return since;
}
