// rootpw as Fedora's kickstarts write it: `rootpw --iscrypted --lock locked` is valid for
// pykickstart and locks root the way Anaconda does (the value kept behind a "!", as
// `passwd -l` would); the written /etc/shadow is read back from a real target directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKickstart } from '../../kickstart/parser.js';
import { applyAccounts } from '../../kickstart/accounts.js';
import { Target } from '../../kickstart/target.js';
import { formatProblem } from '../../kickstart/errors.js';

/** Parses one rootpw line, applies it to a fresh /etc, and returns problems and root's shadow password field. */
async function rootpw(line: string): Promise<{ errors: string[]; warnings: string[]; shadow: string | null }> {
  const base = await mkdtemp(join(tmpdir(), 'atomhost-ks-rootpw-'));
  try {
    const root = join(base, 'deploy');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(base, 'var'));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n');
    await writeFile(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n');
    const ks = join(base, 'root.ks');
    await writeFile(ks, `${line}\n`);
    const { ks: parsed, errors } = parseKickstart(ks);
    const errs = errors.filter((e) => e.kind !== 'missing-command').map(formatProblem);
    const warns = parsed.warnings.map(formatProblem);
    if (errs.length) return { errors: errs, warnings: warns, shadow: null };
    await applyAccounts(parsed, new Target(root, join(base, 'var')));
    const row = readFileSync(join(root, 'etc', 'shadow'), 'utf8').split('\n').find((l) => l.startsWith('root:'));
    return { errors: errs, warnings: warns, shadow: row?.split(':')[1] ?? null };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

test("Fedora's `rootpw --iscrypted --lock locked` is accepted and locks root (\"!\" before the kept value)", async () => {
  const r = await rootpw('rootpw --iscrypted --lock locked');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.shadow, '!locked');
});

test('rootpw --iscrypted --lock with a real hash keeps the hash behind "!" (unlockable as passwd -u would)', async () => {
  const hash = '$6$abcdefgh$0123456789abcdefABCDEF';
  const r = await rootpw(`rootpw --iscrypted --lock ${hash}`);
  assert.deepEqual(r.errors, []);
  assert.equal(r.shadow, `!${hash}`);
  assert.equal((await rootpw(`rootpw --lock --iscrypted ${hash}`)).shadow, `!${hash}`, 'option order does not matter');
});

test('rootpw --iscrypted with a value that is not a hash, unlocked, is accepted with a warning that no password matches', async () => {
  const r = await rootpw('rootpw --iscrypted notahash');
  assert.deepEqual(r.errors, []);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /root\.ks:1: .*"notahash" is not a crypt\(3\) hash: no password will match it/);
  assert.equal(r.shadow, 'notahash');
});

test('rootpw --iscrypted still refuses a value that would split the shadow entry', async () => {
  const r = await rootpw("rootpw --iscrypted --lock 'locked:0:0'");
  assert.equal(r.shadow, null);
  assert.match(r.errors.join('\n'), /root\.ks:1: .*rootpw.*":"/);
});
