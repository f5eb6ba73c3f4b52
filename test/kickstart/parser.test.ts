// The kickstart parser against the corpus in test/kickstart/corpus: each file says, next to
// its lines, which problems it must produce (#expect KIND [COMMAND] [OPTION]); the test
// demands exactly those, with their file and line, all in one pass. Valid files say
// #expect-valid. The corpus must use every command and every problem kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKickstart, memoryReader } from '../../kickstart/parser.js';
import { COMMANDS, ALIASES } from '../../kickstart/commands.js';
import type { KickstartProblem } from '../../kickstart/errors.js';
import { planLayout } from '../../kickstart/layout.js';

// Compiled to dist/test/kickstart; the corpus stays in the source tree.
const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'kickstart', 'corpus');
const files = readdirSync(CORPUS).filter((f) => f.endsWith('.ks')).sort();

interface Expect {
  file: string;
  line: number;
  kind: string;
  command?: string;
  option?: string;
}

function expectations(files: string[]): { valid: boolean; unsupported: boolean; expect: Expect[] } {
  let valid = false;
  let unsupported = false;
  const expect: Expect[] = [];
  for (const file of files) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((raw, i) => {
        if (/^#expect-valid\b/.test(raw)) valid = true;
        if (/^#expect-unsupported\b/.test(raw)) unsupported = true;
        let m = /^#expect-file (\S+)(?: (\S+))?/.exec(raw);
        if (m) expect.push({ file, line: 0, kind: m[1], command: m[2] });
        m = /^#expect-line (\d+) (\S+)/.exec(raw);
        if (m) expect.push({ file, line: Number(m[1]), kind: m[2] });
        for (const one of raw.split(/\s#expect /).slice(1)) {
          const [kind, command, option] = one.trim().split(/\s+/);
          expect.push({ file, line: i + 1, kind, command, option });
        }
      });
  }
  return { valid, unsupported, expect };
}

const matches = (p: KickstartProblem, e: Expect) =>
  p.file === e.file && p.line === e.line && p.kind === e.kind && (e.command === undefined || p.command === e.command) && (e.option === undefined || p.option === e.option);

for (const name of files) {
  test(`corpus ${name}`, () => {
    const path = join(CORPUS, name);
    const { ks, errors } = parseKickstart(path);
    const { valid, unsupported, expect } = expectations(ks.files);
    if (valid || unsupported) {
      assert.deepEqual(errors, [], `${name} is valid`);
      // Valid but not for apply here (ostreecontainer): said before any disk is touched.
      assert.equal(ks.unsupported.length > 0, unsupported, JSON.stringify(ks.unsupported));
      return;
    }
    assert.ok(expect.length > 0, `${name} declares what it expects`);
    for (const e of expect) assert.ok(errors.some((p) => matches(p, e)), `${name}: expected ${JSON.stringify(e)}; got ${JSON.stringify(errors, null, 1)}`);
    for (const p of errors) assert.ok(expect.some((e) => matches(p, e)), `${name}: unexpected ${JSON.stringify(p)}`);
  });
}

test('the corpus uses every command and produces every kind of problem', () => {
  const used = new Set<string>();
  const kinds = new Set<string>();
  for (const name of files) {
    const path = join(CORPUS, name);
    for (const line of readFileSync(path, 'utf8').split('\n')) used.add(line.trim().split(/\s+/)[0]);
    for (const p of parseKickstart(path).errors) kinds.add(p.kind);
  }
  // authconfig is auth under its older name (one of them per file).
  const commands = [...Object.keys(COMMANDS), ...Object.keys(ALIASES)].filter((c) => c !== 'authconfig');
  assert.deepEqual(commands.filter((c) => !used.has(c)), [], 'commands missing from the corpus');
  for (const s of ['%pre', '%post', '%packages', '%include']) assert.ok(used.has(s), s);
  const allKinds = ['syntax', 'unknown-command', 'unknown-option', 'missing-option', 'missing-value', 'unexpected-argument', 'bad-value', 'conflict', 'duplicate', 'missing-command', 'reference', 'section', 'include'];
  assert.deepEqual(allKinds.filter((k) => !kinds.has(k)), []);
});

test('every mistake of a file is reported in one pass, in line order', () => {
  const { errors } = parseKickstart(join(CORPUS, 'bad-value.ks'));
  assert.equal(errors.length, 5);
  assert.deepEqual(errors.map((e) => e.line), [1, 2, 3, 4, 5]);
});

test('continued lines, quoting and comments read as pykickstart reads them', () => {
  const { ks, errors } = parseKickstart(
    '/ks',
    memoryReader({
      '/ks': [
        'ostreesetup --osname=os --url=http://h/r \\',
        '  --ref=os/stable   # trailing comment',
        "rootpw --plaintext 'it''s \"quoted\"'",
        'user --name=a --gecos="A \\"B\\" C"',
        'part / --size 500 --fstype xfs',
        'network --hostname=h1',
        'bootloader --append="a=1 b=2"',
      ].join('\n'),
    }),
  );
  assert.deepEqual(errors, []);
  assert.equal(ks.ostreesetup?.ref, 'os/stable');
  assert.equal(ks.ostreesetup?.remote, 'os', 'remote defaults to the OS name, as in pykickstart');
  assert.equal(ks.rootpw?.password, 'its "quoted"');
  assert.equal(ks.users[0].gecos, 'A "B" C');
  assert.equal(ks.parts[0].size, 500);
  assert.deepEqual(ks.bootloader?.append, ['a=1', 'b=2']);
  assert.equal(ks.ostreesetup?.at.line, 1);
});

test('a missing %include that %pre may write is a warning for validate, an error otherwise', () => {
  const files = { '/ks': 'ostreesetup --osname=os --url=http://h/r --ref=r\nautopart\n%include /tmp/part-include\n%pre\necho part / --size=1000 > /tmp/part-include\n%end\n' };
  assert.equal(parseKickstart('/ks', memoryReader(files), { lenientIncludes: true }).errors.length, 0);
  const strict = parseKickstart('/ks', memoryReader(files)).errors;
  assert.equal(strict.length, 1);
  assert.equal(strict[0].kind, 'include');
  assert.equal(strict[0].line, 3);
});

test('layouts: reqpart, growing partitions and LVM extents fit the disk', () => {
  const { ks } = parseKickstart(join(CORPUS, 'valid-lvm.ks'));
  const layout = planLayout(ks, 2 * 1024 ** 3, 'testos');
  const total = layout.partitions.reduce((a, p) => a + p.sizeMiB, 0);
  assert.ok(total <= 2046, `partitions fit: ${total} MiB`);
  const lvs = Object.fromEntries(layout.lvs.map((l) => [l.name, l.sizeMiB]));
  assert.equal(lvs.root, 600);
  assert.equal(lvs.swap, 64);
  assert.ok(lvs.var > 100, 'var grows into the rest of the volume group');
  for (const l of layout.lvs) assert.equal(l.sizeMiB % 4, 0, 'whole 4 MiB extents');
  assert.throws(() => planLayout(ks, 512 * 1024 ** 2, 'testos'), /need/);
});
