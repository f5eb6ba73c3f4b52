import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editKargs } from '../../core/kargs.js';
import { AtomhostError } from '../../core/errors.js';

test('append, delete by key or key=value, replace with or without the old value', () => {
  assert.deepEqual(editKargs(['a=1', 'b'], { append: ['c=3'] }), ['a=1', 'b', 'c=3']);
  assert.deepEqual(editKargs(['a=1', 'b'], { delete: ['a'] }), ['b']);
  assert.deepEqual(editKargs(['a=1', 'a=2'], { delete: ['a=2'] }), ['a=1']);
  assert.deepEqual(editKargs(['console=tty0', 'x'], { replace: ['console=ttyS0'] }), ['console=ttyS0', 'x']);
  assert.deepEqual(editKargs(['c=1', 'c=2'], { replace: ['c=2=3'] }), ['c=1', 'c=3']);
});

test('refuses ambiguous and missing arguments with the field named', () => {
  assert.throws(() => editKargs(['a=1', 'a=2'], { delete: ['a'] }), (e: unknown) => e instanceof AtomhostError && /set 2 times/.test(e.message) && e.details.field === 'delete');
  assert.throws(() => editKargs([], { delete: ['a'] }), /kernel argument a is not set/);
  assert.throws(() => editKargs([], { replace: ['a'] }), /--replace wants/);
  assert.throws(() => editKargs([], { append: ['a b'] }), /not a kernel argument/);
});

test('a stack manifest edits kernel arguments: root=, rd.* and the console of a kickstart-installed host stay', async () => {
  const { stackKargs } = await import('../../core/kargs.js');
  const installed = ['root=UUID=5d1c', 'rd.lvm.lv=vg/root', 'rw', 'console=ttyS0,115200'];
  assert.deepEqual(stackKargs(installed, { kargs: ['quiet', 'console=tty1'] }), ['root=UUID=5d1c', 'rd.lvm.lv=vg/root', 'rw', 'console=tty1', 'quiet']);
  assert.deepEqual(stackKargs(installed, { kargs: ['quiet'], kargsDelete: ['rw'] }), ['root=UUID=5d1c', 'rd.lvm.lv=vg/root', 'console=ttyS0,115200', 'quiet']);
  assert.deepEqual(stackKargs(installed, {}), installed, 'no kargs in the manifest: unchanged');
  const { parseStackManifest } = await import('../../core/stack-manifest.js');
  await assert.rejects(parseStackManifest('metadata: {version: "1"}\nos: {kargsDelete: [root]}\n', 'm.yaml'), /may not remove root=/);
});
