// The installed system's /etc, as Anaconda leaves it: host name, time zone, locale,
// keyboard, SELinux mode, network (NetworkManager keyfiles), fstab, firewall, services.
// Accounts live in accounts.ts. Every file is written atomically inside the new deployment.
import { existsSync, statSync } from 'node:fs';
import { symlink, rm } from 'node:fs/promises';
import { run } from '../core/exec.js';
import type { Target } from './target.js';
import { hostnameOf, isHostnameOnly, type Kickstart, type NetworkSpec } from './types.js';

export interface Mounted {
  mount: string;
  fstype: string;
  /** fstab's first field: UUID=… or /dev/mapper/…. */
  spec: string;
  fsoptions: string | null;
}

function prefixToNetmask(mask: string): number {
  if (/^\d+$/.test(mask)) return Number(mask);
  return mask.split('.').reduce((a, o) => a + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
}

/** One NetworkManager keyfile for a network line (the format NM reads from system-connections). */
export function nmKeyfile(n: NetworkSpec, id: string): string {
  const lines = ['[connection]', `id=${id}`, 'type=ethernet'];
  if (n.device && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.device)) lines.push(`interface-name=${n.device}`);
  lines.push(`autoconnect=${n.onboot ? 'true' : 'false'}`, '');
  if (n.device && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.device)) lines.push('[ethernet]', `mac-address=${n.device}`, '');
  if (n.mtu) lines.push('[ethernet]', `mtu=${n.mtu}`, '');
  lines.push('[ipv4]');
  if (n.noipv4) lines.push('method=disabled');
  else if (n.bootproto === 'static') {
    lines.push('method=manual', `address1=${n.ip}/${prefixToNetmask(n.netmask ?? '24')}${n.gateway ? `,${n.gateway}` : ''}`);
  } else lines.push('method=auto');
  const v4dns = n.nameservers.filter((s) => !s.includes(':'));
  if (v4dns.length) lines.push(`dns=${v4dns.join(';')};`);
  if (n.nodns) lines.push('ignore-auto-dns=true');
  if (n.nodefroute) lines.push('never-default=true');
  lines.push('', '[ipv6]');
  if (n.noipv6) lines.push('method=disabled');
  else if (n.ipv6 && n.ipv6 !== 'auto' && n.ipv6 !== 'dhcp') lines.push('method=manual', `address1=${n.ipv6}`);
  else lines.push(`method=${n.ipv6 === 'dhcp' ? 'dhcp' : 'auto'}`);
  const v6dns = n.nameservers.filter((s) => s.includes(':'));
  if (v6dns.length) lines.push(`dns=${v6dns.join(';')};`);
  return `${lines.join('\n')}\n`;
}

function fstabLine(m: Mounted): string {
  const opts = m.fsoptions ?? (m.fstype === 'efi' || m.fstype === 'vfat' ? 'umask=0077,shortname=winnt' : 'defaults');
  const type = m.fstype === 'efi' ? 'vfat' : m.fstype;
  const pass = m.mount === '/' ? 1 : m.fstype === 'swap' ? 0 : 2;
  return `${m.spec} ${m.mount === 'swap' ? 'none' : m.mount} ${type} ${opts} 0 ${pass}`;
}

async function systemctl(t: Target, verb: 'enable' | 'disable' | 'mask', unit: string): Promise<void> {
  // `--`: a unit name is never read as an option, whatever the parser let through.
  const r = await run('systemctl', [`--root=${t.root}`, '--quiet', '--no-reload', verb, '--', unit]);
  if (r.exitCode !== 0) throw new Error(`services: cannot ${verb} ${unit} in the installed system: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
}

function unitExists(t: Target, unit: string): boolean {
  return ['/usr/lib/systemd/system', '/etc/systemd/system', '/lib/systemd/system'].some((d) => existsSync(t.resolve(`${d}/${unit}`)));
}

/** Writes every /etc setting of the kickstart; returns one line per thing done and the warnings. */
export async function configureEtc(ks: Kickstart, t: Target, mounts: Mounted[]): Promise<{ done: string[]; warnings: string[] }> {
  const done: string[] = [];
  const warnings: string[] = [];

  // Parents before children (/ before /boot before /boot/efi), as mount -a needs them.
  const ordered = [...mounts].sort((a, b) => (a.mount === 'swap' ? 1 : 0) - (b.mount === 'swap' ? 1 : 0) || a.mount.split('/').filter(Boolean).length - b.mount.split('/').filter(Boolean).length);
  await t.write('/etc/fstab', `# Created by atomhost kickstart apply\n${ordered.map(fstabLine).join('\n')}\n`);
  done.push(`fstab: ${mounts.map((m) => m.mount).join(', ')}`);

  const hostname = hostnameOf(ks);
  if (hostname) {
    await t.write('/etc/hostname', `${hostname}\n`);
    done.push(`host name ${hostname}`);
  }

  // NTP servers: timezone --ntpservers and timesource lines (Anaconda merges them).
  const ntp = [...(ks.timezone?.ntpservers ?? []), ...ks.timesources.filter((s) => s.host).map((s) => s.host!)];
  const ntpOff = !!ks.timezone?.nontp || ks.timesources.some((s) => s.kind === 'disable');
  if (ntp.length) {
    await t.write('/etc/systemd/timesyncd.conf.d/50-kickstart.conf', `[Time]\nNTP=${ntp.join(' ')}\n`);
    if (existsSync(t.resolve('/etc/chrony.conf'))) {
      const chrony = (await t.read('/etc/chrony.conf')) ?? '';
      const kept = chrony.split('\n').filter((l) => !/^\s*(server|pool)\s/.test(l));
      const pools = new Set(ks.timesources.filter((s) => s.kind === 'pool').map((s) => s.host));
      await t.write('/etc/chrony.conf', `${ntp.map((s) => `${pools.has(s) ? 'pool' : 'server'} ${s} iburst`).join('\n')}\n${kept.join('\n')}`);
    }
    done.push(`NTP ${ntp.join(', ')}`);
  }
  if (ntpOff) for (const u of ['chronyd.service', 'systemd-timesyncd.service']) if (unitExists(t, u)) await systemctl(t, 'disable', u);

  if (ks.timezone?.timezone) {
    const tz = ks.timezone;
    // The zone must be a file of the image's own tz database (the parser already refused
    // `..` and absolute names; resolving beneath the target keeps its symlinks inside).
    if (tz.timezone.split('/').some((p) => p === '..' || p === '.' || p === '') || tz.timezone.startsWith('/')) throw new Error(`${tz.at.file}:${tz.at.line}: timezone: invalid time zone ${JSON.stringify(tz.timezone)}`);
    const zoneinfo = t.resolve('/usr/share/zoneinfo');
    if (existsSync(zoneinfo)) {
      const zone = t.resolve(`/usr/share/zoneinfo/${tz.timezone}`);
      if (!existsSync(zone) || !statSync(zone).isFile()) throw new Error(`${tz.at.file}:${tz.at.line}: timezone: ${JSON.stringify(tz.timezone)} is not a zone of the image's tz database (/usr/share/zoneinfo)`);
    } else warnings.push(`timezone ${tz.timezone}: the image has no /usr/share/zoneinfo; /etc/localtime points to the zone anyway`);
    const link = t.resolve('/etc/localtime');
    await rm(link, { force: true });
    await symlink(`../usr/share/zoneinfo/${tz.timezone}`, link);
    await t.write('/etc/adjtime', `0.0 0 0.0\n0\n${tz.utc ? 'UTC' : 'LOCAL'}\n`);
    done.push(`time zone ${tz.timezone} (hardware clock ${tz.utc ? 'UTC' : 'local'})`);
  } else if (ks.timezone) {
    await t.write('/etc/adjtime', `0.0 0 0.0\n0\n${ks.timezone.utc ? 'UTC' : 'LOCAL'}\n`);
    done.push(`hardware clock ${ks.timezone.utc ? 'UTC' : 'local'}`);
  }

  if (ks.lang) {
    await t.write('/etc/locale.conf', `LANG=${ks.lang.lang}\n`);
    done.push(`locale ${ks.lang.lang}`);
  }

  if (ks.keyboard) {
    const k = ks.keyboard;
    // A console keymap has no variant: "cz (qwerty)" gives cz.
    const keymap = k.vckeymap ?? (k.layout ?? k.xlayouts[0])?.replace(/ ?\(.*$/, '') ?? null;
    if (keymap) await t.write('/etc/vconsole.conf', `KEYMAP=${keymap}\n`);
    const x = k.xlayouts.length ? k.xlayouts : k.layout ? [k.layout] : [];
    if (x.length) {
      // "cz (qwerty)" is layout cz with variant qwerty, as localed writes them.
      const split = x.map((l) => /^([^ (]+) ?(?:\(([^)]+)\))?$/.exec(l) ?? [l, l, undefined]);
      const variants = split.some((m) => m[2]) ? `        Option "XkbVariant" "${split.map((m) => m[2] ?? '').join(',')}"\n` : '';
      await t.write('/etc/X11/xorg.conf.d/00-keyboard.conf', `Section "InputClass"\n        Identifier "system-keyboard"\n        MatchIsKeyboard "on"\n        Option "XkbLayout" "${split.map((m) => m[1]).join(',')}"\n${variants}EndSection\n`);
    }
    done.push(`keyboard ${keymap ?? x.join(',')}`);
  }

  if (ks.selinux) {
    const cur = (await t.read('/etc/selinux/config')) ?? 'SELINUXTYPE=targeted\n';
    const lines = cur.split('\n').filter((l) => !/^\s*SELINUX=/.test(l));
    await t.write('/etc/selinux/config', `SELINUX=${ks.selinux.mode}\n${lines.join('\n').replace(/\n*$/, '\n')}`);
    done.push(`SELinux ${ks.selinux.mode}`);
  }

  const configured = ks.network.filter((n) => !isHostnameOnly(n));
  for (const [i, n] of configured.entries()) {
    const id = n.device ?? `kickstart-${i + 1}`;
    await t.write(`/etc/NetworkManager/system-connections/${id.replace(/[^A-Za-z0-9_.:-]/g, '_')}.nmconnection`, nmKeyfile(n, id), { mode: 0o600 });
    done.push(`network ${id}: ${n.bootproto === 'static' ? `${n.ip}/${prefixToNetmask(n.netmask ?? '24')}${n.gateway ? ` via ${n.gateway}` : ''}` : n.bootproto}`);
  }

  if (ks.firewall) {
    const f = ks.firewall;
    const hasFirewalld = unitExists(t, 'firewalld.service');
    if (!f.enabled) {
      if (hasFirewalld) await systemctl(t, 'disable', 'firewalld.service');
      done.push('firewall disabled');
    } else if (hasFirewalld) {
      const services = [...new Set([...(f.useSystemDefaults ? [] : ['ssh']), ...f.services])].filter((s) => !f.removeServices.includes(s));
      const ports = f.ports.map((p) => p.split(':'));
      const xml = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<zone>',
        '  <short>Public</short>',
        ...services.map((s) => `  <service name="${s}"/>`),
        ...ports.map(([port, proto]) => `  <port protocol="${proto}" port="${port}"/>`),
        ...f.trust.map((d) => `  <interface name="${d}"/>`),
        '</zone>',
      ].join('\n');
      await t.write('/etc/firewalld/zones/public.xml', `${xml}\n`);
      done.push(`firewall: ${[...services, ...f.ports].join(', ') || 'no openings'}`);
    } else {
      warnings.push('firewall: the image has no firewalld.service; the firewall settings were not applied');
    }
  }

  if (ks.services) {
    for (const u of ks.services.enabled) {
      if (!unitExists(t, u)) throw new Error(`services --enabled: ${u} does not exist in the installed system`);
      await systemctl(t, 'enable', u);
    }
    for (const u of ks.services.disabled) {
      if (!unitExists(t, u)) warnings.push(`services --disabled: ${u} does not exist in the installed system`);
      else await systemctl(t, 'disable', u);
    }
    done.push(`services enabled: ${ks.services.enabled.join(', ') || '-'}; disabled: ${ks.services.disabled.join(', ') || '-'}`);
  }

  for (const [what, given] of [
    ['auth/authselect', ks.auth],
    ['bootloader --timeout', ks.bootloader?.timeout ?? null],
  ] as const) {
    if (given !== null) warnings.push(`${what}: not applied by atomhost (the OS image's own defaults stay)`);
  }
  return { done, warnings };
}
