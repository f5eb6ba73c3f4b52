// Kickstart files and OS images that try to make the installer write outside the target.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { Target } from '../../kickstart/target.js';
import { parseKickstart } from '../../kickstart/parser.js';

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
