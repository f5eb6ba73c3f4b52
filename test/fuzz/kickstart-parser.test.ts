// Fuzzing the kickstart parser: the corpus files cut, spliced and mutated at random (seeded,
// FUZZ_SEED / FUZZ_SECONDS). Invariant: parsing never throws or hangs, and every problem it
// reports names a file and a line of it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKickstart } from '../../kickstart/parser.js';

const CORPUS = join(process.cwd(), 'test', 'kickstart', 'corpus');
const JUNK = ['"', "'", '\\', '--', '=', ' ', '\n', '%post', '%end', '%include /nonexistent', '%pre', '#', '\t', '\u0000', 'é', '--size=-1', '--grow', 'part', '$(reboot)', '..'];

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
      const { errors } = parseKickstart(file);
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
