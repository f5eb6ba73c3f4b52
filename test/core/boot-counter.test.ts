// The boot counter in GRUB's environment block, written by atomhost and read back by
// GRUB's own grub-editenv: armed for a new default, cleared by the gate, and both still
// work on a /boot with no free space left (a full tmpfs here): the block is rewritten in
// place, never truncated. A file that is not an environment block is refused, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireCommand, requireRoot } from '../helpers/capability.js';
import { makeScratch } from '../../sandbox/scratch.js';
import { armBootCounter, bootLoaderFellBack, clearBootCounter, grubenvPath, readBootEnv } from '../../core/boot-counter.js';

const list = async (sysroot: string) => (await execa('grub-editenv', [grubenvPath(sysroot), 'list'])).stdout.split('\n').filter(Boolean).sort();

/** A 1 MiB tmpfs as the sysroot, with /boot/grub and nothing in it; freed afterwards. */
async function withBoot(fn: (sysroot: string) => Promise<void>): Promise<void> {
  const scratch = await makeScratch('atomhost-grubenv-', 1);
  try {
    await mkdir(join(scratch.dir, 'boot', 'grub'), { recursive: true });
    await fn(scratch.dir);
  } finally {
    await scratch.dispose();
  }
}

test('armed and cleared in place; GRUB reads what atomhost wrote, also when /boot is full', async (t) => {
  if (!requireRoot(t, 'mounts a small tmpfs as a full /boot') || !(await requireCommand(t, 'grub-editenv'))) return;
  await withBoot(async (sysroot) => {
    await execa('grub-editenv', [grubenvPath(sysroot), 'create']);
    await execa('grub-editenv', [grubenvPath(sysroot), 'set', 'saved_entry=0']);

    assert.equal(await armBootCounter(sysroot, 3), true);
    assert.deepEqual(await list(sysroot), ['boot_counter=3', 'boot_success=0', 'saved_entry=0']);
    assert.deepEqual(await readBootEnv(sysroot), { saved_entry: '0', boot_counter: '3', boot_success: '0' });
    assert.equal((await stat(grubenvPath(sysroot))).size, 1024);

    // Fill the file system to the last byte.
    await execa('sh', ['-c', `cat /dev/zero > ${join(sysroot, 'filler')} 2>/dev/null; true`]);
    await assert.rejects(writeFile(join(sysroot, 'more'), 'x'.repeat(8192)), /ENOSPC/, 'the file system is full');
    assert.equal(await clearBootCounter(sysroot), true);
    assert.deepEqual(await list(sysroot), ['boot_success=1', 'saved_entry=0']);
    assert.equal(await bootLoaderFellBack(sysroot), false);
    assert.equal(await armBootCounter(sysroot, 2), true, 'armed again on the full file system');
    assert.deepEqual(await list(sysroot), ['boot_counter=2', 'boot_success=0', 'saved_entry=0']);
  });
});

test('what custom.cfg leaves after a fallback is seen; a file that is not an environment block is refused naming it', async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs') || !(await requireCommand(t, 'grub-editenv'))) return;
  await withBoot(async (sysroot) => {
    const env = grubenvPath(sysroot);
    assert.equal(await armBootCounter(sysroot), false, 'no grubenv: nothing to count');
    await execa('grub-editenv', [env, 'create']);
    await execa('grub-editenv', [env, 'set', 'boot_counter=fallback', 'boot_success=0']);
    assert.equal(await bootLoaderFellBack(sysroot), true);

    await writeFile(env, 'boot_counter=3\n');
    await assert.rejects(armBootCounter(sysroot), (e: Error) => e.message.includes(env) && /not a GRUB environment block/.test(e.message));
    assert.equal(await readFile(env, 'utf8'), 'boot_counter=3\n', 'left as it was');
    assert.deepEqual(await readBootEnv(sysroot), {});
  });
});
