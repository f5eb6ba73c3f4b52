// What `kickstart validate` says apply would do, as data (for --json) and as lines.
import type { Layout } from './layout.js';
import { substituteBasearch } from './basearch.js';
import { hostnameOf, type Kickstart } from './types.js';

export interface KickstartSummary {
  os: string;
  partitions: string[];
  kargs: string;
  etc: string[];
  scripts: string[];
}

export function summarize(ks: Kickstart, layout: Layout | null): KickstartSummary {
  const os = ks.ostreesetup ? `${ks.ostreesetup.remote}:${substituteBasearch(ks.ostreesetup.ref)} from ${ks.ostreesetup.url} as ${ks.ostreesetup.osname}${ks.ostreesetup.nogpg ? ' (no GPG check)' : ''}` : '(no OS)';
  const partitions = layout
    ? [
        ...layout.partitions.map((p) => `${p.number}: ${(p.mount ?? p.pv ?? p.fstype).padEnd(10)} ${p.fstype.padEnd(8)} ${p.sizeMiB} MiB`),
        ...layout.lvs.map((l) => `${l.vg}/${l.name}: ${(l.mount ?? '').padEnd(10)} ${l.fstype.padEnd(8)} ${l.sizeMiB} MiB (LVM)`),
      ]
    : [];
  const etc: string[] = [];
  const hostname = hostnameOf(ks);
  if (hostname) etc.push(`host name ${hostname}`);
  if (ks.timezone?.timezone) etc.push(`time zone ${ks.timezone.timezone}`);
  const ntp = [...(ks.timezone?.ntpservers ?? []), ...ks.timesources.filter((s) => s.host).map((s) => s.host!)];
  if (ntp.length) etc.push(`NTP ${ntp.join(', ')}`);
  for (const g of ks.groups) etc.push(`group ${g.name}${g.gid !== null ? ` (gid ${g.gid})` : ''}`);
  if (ks.lang) etc.push(`locale ${ks.lang.lang}`);
  if (ks.keyboard) etc.push(`keyboard ${ks.keyboard.vckeymap ?? ks.keyboard.layout ?? ks.keyboard.xlayouts.join(',')}`);
  if (ks.selinux) etc.push(`SELinux ${ks.selinux.mode}`);
  for (const n of ks.network) if (n.device || n.ip) etc.push(`network ${n.device ?? '(default)'} ${n.bootproto}${n.ip ? ` ${n.ip}` : ''}`);
  if (ks.rootpw) etc.push(ks.rootpw.lock ? 'root account locked' : 'root password');
  for (const u of ks.users) etc.push(`user ${u.name}${u.groups.length ? ` (groups ${u.groups.join(',')})` : ''}`);
  if (ks.sshkeys.length) etc.push(`${ks.sshkeys.length} SSH key(s) for ${[...new Set(ks.sshkeys.map((k) => k.username))].join(', ')}`);
  if (ks.services) etc.push(`services enabled ${ks.services.enabled.join(',') || '-'}, disabled ${ks.services.disabled.join(',') || '-'}`);
  if (ks.firewall) etc.push(`firewall ${ks.firewall.enabled ? 'enabled' : 'disabled'}`);
  const scripts = [...ks.pre, ...ks.post].map((s) => `%${s.kind} (${s.at.file}:${s.at.line})${s.nochroot ? ' --nochroot' : ''}${s.erroronfail ? ' --erroronfail' : ''}`);
  return { os, partitions, kargs: (ks.bootloader?.append ?? []).join(' '), etc, scripts };
}
