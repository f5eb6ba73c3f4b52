// Kickstart files and OS images that try to make the installer write outside the target.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { Target } from '../../kickstart/target.js';
import { parseKickstart } from '../../kickstart/parser.js';
import { configureEtc } from '../../kickstart/configure.js';
import { formatProblem } from '../../kickstart/errors.js';
import { execa } from 'execa';
import { CLI } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';

const CORPUS = join(process.cwd(), 'test', 'kickstart', 'corpus');

test('a symlink of the OS image cannot lead a write out of the installed system', async () => {
  const base = await mkdtemp(join(tmpdir(), 'atomhost-ks-hostile-'));
  try {
    const root = join(base, 'deploy');
    const varDir = join(base, 'var');
    const outside = join(base, 'host-sentinel');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(varDir);
    await mkdir(outside);
    // The image's /etc/ssh points at a name that does not exist, then climbs.
    await symlink('nonexistent/../../../../../../host-sentinel', join(root, 'etc', 'ssh'));
    await symlink('/../../../../host-sentinel', join(root, 'etc', 'abs'));
    await symlink('../../..', join(root, 'etc', 'up'));
    const t = new Target(root, varDir);
    for (const p of ['/etc/ssh/authorized_keys', '/etc/abs/passwd', '/etc/up/shadow', '/../../etc/x', '/var/../../../x']) {
      const host = t.resolve(p);
      assert.ok(host.startsWith(root + sep) || host.startsWith(varDir + sep) || host === root, `${p} resolved to ${host}, outside the target`);
      await t.write(p, 'written by the installer\n');
    }
    assert.deepEqual(await readdir(outside), [], 'nothing was written on the provisioning host');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('--mkfsoptions that read files of the installing host, and .. in --homedir, are refused with their line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-ks-hostile-'));
  try {
    const ks = join(dir, 'h.ks');
    await writeFile(
      ks,
      [
        'ostreesetup --osname=os --url=http://127.0.0.1:1/r --ref=r --nogpg',
        'part / --fstype=ext4 --grow --mkfsoptions="-d /etc"',
        'part /srv --fstype=xfs --size=400 --mkfsoptions="-p /root/proto"',
        'user --name=core --homedir=/home/../../etc',
        '',
      ].join('\n'),
    );
    const { errors } = parseKickstart(ks);
    const lines = errors.map((e) => `${e.line}: ${e.message}`);
    assert.ok(errors.some((e) => e.line === 2 && /-d/.test(e.message)), lines.join('\n'));
    assert.ok(errors.some((e) => e.line === 3 && /-p/.test(e.message)), lines.join('\n'));
    assert.ok(errors.some((e) => e.line === 4 && /\.\./.test(e.message)), lines.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// One hostile line per kickstart: the value would reach a file of the installed system
// (firewalld zone XML, NetworkManager keyfile, /etc/passwd and /etc/shadow, fstab,
// vconsole.conf, a BLS entry, a systemctl argument) where it could add a line, a field or
// an option, or climb with `..`. Each must be refused at its line, naming the option.
const HOSTILE: [string, string | undefined, RegExp][] = [
  ['firewall --port=22:tcp$(reboot)', '--port', /invalid port/],
  ['firewall --port=70000:tcp', '--port', /1-65535/],
  ['firewall --port=9000-8000:udp', '--port', /invalid port/],
  [`firewall --service='ssh"/><rule'`, '--service', /invalid service/],
  [`firewall --trust='eth0"/><x'`, '--trust', /invalid interface/],
  ['firewall --remove-service=../x', '--remove-service', /invalid service/],
  ['network --device=..', '--device', /invalid device/],
  ['network --interfacename=../etc', '--interfacename', /invalid interface name/],
  [`network --hostname='a;reboot'`, '--hostname', /invalid host name/],
  ['network --bootproto=static --ip=10.0.0.5 --netmask=255.255.255.0 --gateway=10.0.0.1;x', '--gateway', /invalid IPv4 gateway/],
  [`network --nameserver='1.1.1.1 2.2.2.2'`, '--nameserver', /invalid name server/],
  ['network --ipv6=2001:db8::1/64/x', '--ipv6', /invalid --ipv6/],
  ['network --ipv6=2001:db8::1/129', '--ipv6', /invalid --ipv6/],
  ['network --ipv6gateway=fe80::1%eth0;x', '--ipv6gateway', /invalid IPv6 gateway/],
  ['timezone ../../../etc/shadow', undefined, /invalid time zone/],
  ['timezone /etc/shadow', undefined, /invalid time zone/],
  ['keyboard --vckeymap=../../x', '--vckeymap', /invalid console keymap/],
  ['keyboard --vckeymap=..', '--vckeymap', /invalid console keymap/],
  [`keyboard --xlayouts='us" Option "XkbOptions'`, '--xlayouts', /invalid X layout/],
  ['keyboard --xlayouts=us --switch=grp:x;y', '--switch', /invalid layout switch/],
  [`lang 'en_US;reboot'`, undefined, /invalid language/],
  ['services --enabled=--now', '--enabled', /invalid unit name/],
  ['services --disabled=../../etc/x', '--disabled', /invalid unit name/],
  ['services --enabled=a@b@c', '--enabled', /invalid unit name/],
  [`rootpw --iscrypted '$6$salt$hash:0:0:::'`, '--iscrypted', /":"|crypt/],
  [`rootpw --iscrypted '!x:0'`, '--iscrypted', /":"|crypt/],
  [`user --name=core --iscrypted --password='$6$s$h:0'`, '--password', /":"|crypt/],
  [`user --name=core --gecos='Core:0:0'`, '--gecos', /":"/],
  ['user --name=core --shell=/bin/sh:/x', '--shell', /":"/],
  ['user --name=core --homedir=/home/../../etc', '--homedir', /\.\./],
  ['user --name=core --homedir=home/core', '--homedir', /absolute/],
  [`user --name='core:x:0:0'`, '--name', /invalid user name/],
  [`user --name=core --groups='wheel,a:b'`, '--groups', /invalid group name/],
  [`sshkey --username='core:x' "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPz c"`, '--username', /invalid user name/],
  ['sshkey --username=core "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPz c\u000dcommand=x ssh-rsa AAAA"', undefined, /control character/],
  ['part /srv --fstype=xfs --size=400 --fsoptions="defaults 0 0 /dev/sda"', '--fsoptions', /mount options/],
  ['part /srv --fstype=xfs --size=400 --fsoptions="defaults\u000b/dev/sda / xfs"', '--fsoptions', /control character/],
  ['bootloader --append="quiet\u000binit=/bin/sh"', '--append', /control character/],
  ['user --name=core --password "x\u0000y"', '--password', /control character/],
];

test('hostile kickstart values are refused at their file:line, naming the command and option', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-ks-values-'));
  try {
    for (const [i, [line, option, message]] of HOSTILE.entries()) {
      const ks = join(dir, `v${i}.ks`);
      await writeFile(ks, `# hostile value ${i}\n${line}\n`);
      const { errors } = parseKickstart(ks);
      const command = line.split(' ')[0];
      const hit = errors.find((e) => e.line === 2 && e.kind === 'bad-value' && e.command === command && e.option === option && message.test(e.message));
      assert.ok(hit, `${JSON.stringify(line)} was not refused at ${ks}:2 ${command} ${option ?? '(argument)'}; got:\n${errors.map(formatProblem).join('\n')}`);
      assert.ok(formatProblem(hit).startsWith(`${ks}:2: ${command}${option ? ` ${option}` : ''}: `), formatProblem(hit));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('valid Anaconda values of the same options are accepted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-ks-values-'));
  try {
    const ks = join(dir, 'valid.ks');
    await writeFile(
      ks,
      [
        'firewall --enabled --port=22:tcp,8080:udp,6000-6010:tcp,imap:tcp,2222 --service=ssh,freeipa-ldap --trust=eth1 --remove-service=cockpit',
        'network --bootproto=static --device=eth0 --ip=192.168.1.10 --netmask=255.255.255.0 --gateway=192.168.1.1 --nameserver=192.168.1.1,2001:db8::53 --hostname=node1.example.com --ipv6=2001:db8::10/64 --ipv6gateway=2001:db8::1 --activate',
        'network --device=52:54:00:12:34:56 --bootproto=dhcp --interfacename=lan0',
        'network --device=bootif --bootproto=dhcp',
        'timezone America/New_York --utc',
        `keyboard --vckeymap=cz-qwerty --xlayouts='us,cz (qwerty)' --switch=grp:alt_shift_toggle`,
        'lang en_US.UTF-8 --addsupport=cs_CZ.UTF-8',
        'services --enabled=sshd,getty@tty2.service,chronyd --disabled=cups.socket',
        'rootpw --plaintext "pa:ss word"',
        'user --name=core --groups=wheel,adm --gecos="Core User,,," --homedir=/var/home/core --shell=/bin/bash --password=$6$abcdefgh$0123456789 --iscrypted',
        'user --name=ops --password="plain:text" --plaintext',
        'sshkey --username=core "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBPz core@example"',
        'part /srv --fstype=xfs --size=400 --fsoptions=defaults,noatime,context=system_u:object_r:var_t:s0',
        '',
      ].join('\n'),
    );
    const { ks: parsed, errors } = parseKickstart(ks);
    const real = errors.filter((e) => e.kind !== 'missing-command');
    assert.deepEqual(real.map(formatProblem), []);
    assert.deepEqual(parsed.firewall?.ports, ['22:tcp', '8080:udp', '6000-6010:tcp', 'imap:tcp', '2222:tcp'], 'a port without a protocol is tcp, as pykickstart reads it');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the time zone must be a zone of the image's own tz database, not one reached out of it", async () => {
  const base = await mkdtemp(join(tmpdir(), 'atomhost-ks-tz-'));
  try {
    const root = join(base, 'deploy');
    const varDir = join(base, 'var');
    await mkdir(join(root, 'usr', 'share', 'zoneinfo', 'Europe'), { recursive: true });
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(varDir);
    await writeFile(join(root, 'usr', 'share', 'zoneinfo', 'Europe', 'Paris'), 'TZif2 (test)\n');
    // A zone the provisioning host has and the image reaches only through a symlink that climbs out.
    await mkdir(join(base, 'host-zoneinfo', 'America'), { recursive: true });
    await writeFile(join(base, 'host-zoneinfo', 'America', 'New_York'), 'TZif2 (host)\n');
    await symlink('../../../../host-zoneinfo/America', join(root, 'usr', 'share', 'zoneinfo', 'America'));
    assert.ok(existsSync(join(root, 'usr', 'share', 'zoneinfo', 'America', 'New_York')), 'followed naively, the link reaches the host zone');
    const t = new Target(root, varDir);
    const parse = async (line: string) => {
      const ks = join(base, 'tz.ks');
      await writeFile(ks, `${line}\n`);
      const { ks: parsed, errors } = parseKickstart(ks);
      assert.deepEqual(errors.filter((e) => e.kind !== 'missing-command').map(formatProblem), []);
      return { parsed, ks };
    };

    const bad = await parse('timezone America/New_York --utc');
    await assert.rejects(configureEtc(bad.parsed, t, []), (err: Error) => err.message.includes(`${bad.ks}:1: timezone: "America/New_York"`) && /tz database/.test(err.message));
    assert.deepEqual((await readdir(join(root, 'etc'))).filter((f) => f !== 'fstab'), [], 'no /etc/localtime, /etc/adjtime was written');

    const good = await parse(`timezone Europe/Paris\nkeyboard --xlayouts='us,cz (qwerty)'`);
    await configureEtc(good.parsed, t, []);
    assert.equal(readlinkSync(join(root, 'etc', 'localtime')), '../usr/share/zoneinfo/Europe/Paris');
    assert.equal(readFileSync(join(root, 'etc', 'vconsole.conf'), 'utf8'), 'KEYMAP=us\n');
    const x = readFileSync(join(root, 'etc', 'X11', 'xorg.conf.d', '00-keyboard.conf'), 'utf8');
    assert.match(x, /Option "XkbLayout" "us,cz"\n {8}Option "XkbVariant" ",qwerty"\n/);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('kickstart apply refuses hostile values before it touches a disk, naming file:line and option', async (t) => {
  if (!requireRoot(t, 'kickstart apply makes loop devices')) return;
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-ks-apply-hostile-'));
  try {
    const valid = readFileSync(join(CORPUS, 'valid-all-commands.ks'), 'utf8').split('\n');
    // Same file, three values turned hostile on the lines where they were valid.
    const at = (prefix: string) => valid.findIndex((l) => l.startsWith(prefix));
    const edits: [number, string, string][] = [
      [at('firewall '), `firewall --enabled --service=ssh --trust='eth0"/><rule'`, 'firewall --trust'],
      [at('user --name=ops'), `user --name=ops --lock --gecos='x:0:0::/:/bin/sh'`, 'user --gecos'],
      [at('services '), 'services --enabled=--root=/,sshd', 'services --enabled'],
    ];
    for (const [i, line] of edits) valid[i] = line;
    const ks = join(dir, 'hostile.ks');
    await writeFile(ks, valid.join('\n'));
    const image = join(dir, 'disk.img');
    const r = await execa(process.execPath, [CLI, 'kickstart', 'apply', ks, '--image', image, '--size', '2G'], { reject: false, env: { ATOMHOST_DEBUG: '' } });
    assert.notEqual(r.exitCode, 0, r.stdout);
    for (const [i, , where] of edits) assert.ok(r.stderr.includes(`${ks}:${i + 1}: ${where}: `), `no "${ks}:${i + 1}: ${where}:" in:\n${r.stderr}`);
    assert.equal(existsSync(image), false, 'no disk image was made');
    assert.equal((await execa('losetup', ['-j', image])).stdout.trim(), '', 'no loop device');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
