// Bad input and faults: one clear error line naming the thing, a non-zero exit, and the
// deployments, boot entries and revision records exactly as they were.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { OsFixture, OS, CLI } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';

let f: OsFixture;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
});
after(async () => f?.dispose());

async function assertUnchanged(fn: () => Promise<{ exitCode: number; stderr: string }>, expect: RegExp, exitCode?: number) {
  const before = await f.snapshot();
  const r = await fn();
  assert.notEqual(r.exitCode, 0);
  if (exitCode !== undefined) assert.equal(r.exitCode, exitCode, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one error line, got: ${r.stderr}`);
  assert.match(lines[0], expect);
  assert.deepEqual(await f.snapshot(), before);
}

test('a path that is not a sysroot is named', async (t) => {
  if (!requireRoot(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'not-a-sysroot-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await execa(process.execPath, [CLI, '--sysroot', dir, 'status'], { reject: false });
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`^error: ${dir} is not an OSTree sysroot`));
});

test('an unknown version is refused and nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  await assertUnchanged(() => f.cli('deploy', '9.9'), /^error: version 9\.9 is not in the history of origin:testos/);
});

test('a missing ref is named', async (t) => {
  if (!requireRoot(t)) return;
  await assertUnchanged(() => f.cli('rebase', 'origin:testos/no/such/ref'), /^error: pulling testos\/no\/such\/ref from remote origin: .*(404|not found|No such)/i);
});

test('an unknown remote is named', async (t) => {
  if (!requireRoot(t)) return;
  await assertUnchanged(() => f.cli('rebase', 'nowhere:testos/x86_64/stable'), /^error: remote nowhere is not configured/);
});

test('a second concurrent writer is refused while the sysroot lock is held', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('2.0');
  // Hold the lock `ostree admin` takes on ostree/lock (an OFD record lock, which conflicts
  // with POSIX record locks) from another process.
  const script = 'import fcntl,sys,time\nf=open(sys.argv[1],"a")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\ntime.sleep(30)';
  const holder = spawn('python3', ['-c', script, join(f.sysroot, 'ostree', 'lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => holder.stdout!.once('data', r));
    await assertUnchanged(() => f.cli('upgrade'), /^error: sysroot .* is locked by another writer/, 5);
  } finally {
    holder.kill();
  }
});

test('an unreachable remote fails the upgrade and leaves the host as it was', async (t) => {
  if (!requireRoot(t)) return;
  await f.publish('3.0');
  await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${f.sysroot}/ostree/repo`, 'dead', 'http://127.0.0.1:9']);
  await assertUnchanged(() => f.cli('rebase', 'dead:testos/x86_64/stable'), /^error: pulling testos\/x86_64\/stable from remote dead: .*(onnect|refused)/i);
});

test('a corrupt object on the server fails the pull and deploys nothing', async (t) => {
  if (!requireRoot(t)) return;
  const c4 = await f.publish('4.0', { files: { 'usr/share/testos/VERSION': '4.0\n', 'usr/share/testos/payload': 'a file only 4.0 has\n'.repeat(100) } });
  // Find the content object of the new payload file in the archive repo and corrupt it.
  const { stdout } = await execa('ostree', ['ls', `--repo=${f.repo}`, '-C', c4, '/usr/share/testos/payload']);
  const obj = /([0-9a-f]{64})\s+\/usr\/share\/testos\/payload/.exec(stdout)?.[1];
  assert.ok(obj, stdout);
  const file = join(f.repo, 'objects', obj.slice(0, 2), `${obj.slice(2)}.filez`);
  await writeFile(file, Buffer.from('this is not a zlib stream'));
  await assertUnchanged(() => f.cli('upgrade'), /^error: pulling .* from remote origin: .*/);
  assert.ok((await readdir(join(f.sysroot, 'ostree/deploy', OS, 'deploy'))).every((d) => !d.startsWith(c4)));
});

test('bad kargs and bad indices are usage errors (exit 2)', async (t) => {
  if (!requireRoot(t)) return;
  await assertUnchanged(() => f.cli('kargs', '--replace', 'novalue'), /^error: kernel argument novalue is not set|--replace wants/, 2);
  await assertUnchanged(() => f.cli('pin', 'x'), /^error: deployment index must be a number/, 2);
  await assertUnchanged(() => f.cli('pin', '7'), /^error: no deployment at index 7/);
});

test('a kernel that does not fit in /boot is refused before anything is written, with the numbers', async (t) => {
  if (!requireRoot(t)) return;
  const { randomBytes } = await import('node:crypto');
  const { statfs, unlink } = await import('node:fs/promises');
  await f.publish('5.0', { kernel: randomBytes(8 * 1024 * 1024) });
  // The commit is already local (as after `upgrade --download-only`); only /boot is short.
  await execa('ostree', ['pull', `--repo=${f.sysroot}/ostree/repo`, 'origin', 'testos/x86_64/stable']);
  const fs = await statfs(join(f.sysroot, 'boot'));
  const filler = join(f.sysroot, 'boot', 'filler');
  await execa('fallocate', ['-l', String(fs.bavail * fs.bsize - 4 * 1024 * 1024), filler]);
  try {
    await assertUnchanged(() => f.cli('upgrade'), /^error: not enough space in .*\/boot for the new kernel, initramfs and boot entries: 9\.0 MiB needed, [0-4]\.\d MiB free\. Nothing was changed/);
  } finally {
    await unlink(filler);
  }
  const r = await f.cli('upgrade');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /Deployed 5\.0/);
});
