// Fuzzing the kickstart parser: the corpus files cut, spliced and mutated at random (seeded,
// FUZZ_SEED / FUZZ_SECONDS). Invariant: parsing never throws or hangs, and every problem it
// reports names a file and a line of it; no value that reaches a file of the installed system
// carries a control character, and a file without errors has no ":" in a passwd field and
// no ".." in a path it writes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKickstart } from '../../kickstart/parser.js';

const CORPUS = join(process.cwd(), 'test', 'kickstart', 'corpus');
const JUNK = ['"', "'", '\\', '--', '=', ' ', '\n', '%post', '%end', '%include /nonexistent', '%pre', '#', '\t', '\u0000', 'é', '--size=-1', '--grow', 'part', '$(reboot)', '..', '\u000b', '\u001b', ':', '"/><x', '../', '--enabled=-x', 'a b'];

/** Every string of the parsed commands (not the script bodies, %packages or the messages). */
function commandStrings(ks: Record<string, unknown>): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'at') walk(x);
  };
  for (const [k, v] of Object.entries(ks)) if (!['files', 'pre', 'post', 'packages', 'warnings', 'unsupported'].includes(k)) walk(v);
  return out;
}

test('random and mutated kickstarts never crash the parser; every error has its line', { timeout: 120_000 }, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const seconds = Number(process.env.FUZZ_SECONDS ?? 10);
  console.log(`# kickstart fuzz: FUZZ_SEED=${seed} FUZZ_SECONDS=${seconds}`);
  let s = seed >>> 0;
  const r = () => ((s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x6d2b79f5) >>> 0) / 4294967296);
  const files = (await readdir(CORPUS)).filter((f) => f.endsWith('.ks'));
  const texts = await Promise.all(files.map((f) => readFile(join(CORPUS, f), 'utf8')));
  const dir = await mkdtemp(join(tmpdir(), 'atomhost-ks-fuzz-'));
  let runs = 0;
  try {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const lines = texts[Math.floor(r() * texts.length)].split('\n');
      const other = texts[Math.floor(r() * texts.length)].split('\n');
      for (let k = 0; k < 1 + Math.floor(r() * 6); k++) {
        const i = Math.floor(r() * (lines.length + 1));
        const op = r();
        if (op < 0.3) lines.splice(i, 0, other[Math.floor(r() * other.length)] ?? '');
        else if (op < 0.5) lines.splice(i, 1);
        else {
          const line = lines[i] ?? '';
          const at = Math.floor(r() * (line.length + 1));
          lines[i] = line.slice(0, at) + JUNK[Math.floor(r() * JUNK.length)] + line.slice(at + Math.floor(r() * 4));
        }
      }
      const file = join(dir, 'f.ks');
      await writeFile(file, lines.join('\n'));
      const { ks, errors } = parseKickstart(file);
      // eslint-disable-next-line no-control-regex
      const control = commandStrings(ks as unknown as Record<string, unknown>).find((v) => /[\u0000-\u001f\u007f]/.test(v));
      assert.equal(control, undefined, `run ${runs} (FUZZ_SEED=${seed}): a control character reached a parsed value`);
      if (errors.length === 0) {
        for (const u of ks.users) for (const f of [u.gecos, u.homedir, u.shell]) assert.ok(!f?.includes(':'), `run ${runs} (FUZZ_SEED=${seed}): ":" in a passwd field: ${f}`);
        for (const p of [ks.timezone?.timezone, ...ks.users.map((u) => u.homedir)]) assert.ok(!p?.split('/').includes('..'), `run ${runs} (FUZZ_SEED=${seed}): ".." in ${p}`);
      }
      // A command missing from the whole file is reported at line 0 (the file itself).
      for (const e of errors) assert.ok(e.file && Number.isInteger(e.line) && (e.line >= 1 || e.kind === 'missing-command'), `run ${runs} (FUZZ_SEED=${seed}): a problem without a line: ${JSON.stringify(e)}`);
      runs++;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`# kickstart fuzz: ${runs} files parsed`);
  assert.ok(runs > 100);
});
