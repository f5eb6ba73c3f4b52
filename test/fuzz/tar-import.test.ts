// Fuzzing the layer importer: random and mutated tars of the hostile classes (.., absolute
// names, symlinks and hardlinks out of the root, whiteouts and opaque markers under
// symlinks, pax headers, long names, devices, truncated data) go through the same check
// and unpack atomhost uses. Invariant: nothing outside the container root is created,
// changed or removed (a sentinel tree beside it is hashed before and after), and every
// failure is an error, never a crash or a hang. Reproducible: the seed is printed;
// FUZZ_SEED and FUZZ_SECONDS (default 20) choose another run.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { scanLayer, unpackLayer, type ImageTree } from '../../containers/layer.js';
import { rng } from '../helpers/fuzz.js';


const NAMES = ['a', 'b', 'etc', 'x -> y', 'n\nl', '.wh.a', '.wh..wh..opq', 'etc/.wh.passwd', 'a/b', 'a/b/c', '..', '../sentinel/owned', '/abs', '/sentinel/owned', 'l', 'l/x', 'l/.wh.keep', 'l/.wh..wh..opq', 'x'.repeat(120) + '/y'.repeat(20)];
const TARGETS = ['a', '../sentinel', '/sentinel', '../../..', 'nonexistent/../../..', 'b/../..', '/', 'l', '.'];

async function makeTar(r: () => number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const name = r() < 0.3 ? `${pick(NAMES)}/${pick(NAMES)}` : pick(NAMES);
    const kind = r();
    const pax = r() < 0.2 ? { path: pick(NAMES), linkpath: pick(TARGETS) } : undefined;
    if (kind < 0.35) pack.entry({ name, type: 'file', mode: r() < 0.2 ? 0o4755 : 0o644, pax }, Buffer.from('data'));
    else if (kind < 0.55) pack.entry({ name, type: 'directory', mode: 0o755, pax });
    else if (kind < 0.75) pack.entry({ name, type: 'symlink', linkname: pick(TARGETS), pax });
    else if (kind < 0.85) pack.entry({ name, type: 'link', linkname: pick([...NAMES, ...TARGETS]) });
    else if (kind < 0.92) pack.entry({ name, type: pick(['fifo', 'character-device', 'block-device'] as const), devmajor: 1, devminor: 3 });
    else pack.entry({ name, type: 'file', size: 10 }, Buffer.from('short')); // a size that disagrees with the data
  }
  pack.finalize();
  await new Promise<void>((res) => pack.on('end', () => res()));
  let buf = Buffer.concat(chunks);
  if (r() < 0.3) {
    // Mutations: flipped bytes, a truncated tail.
    buf = Buffer.from(buf);
    for (let k = 0; k < 1 + Math.floor(r() * 8); k++) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
    if (r() < 0.5) buf = buf.subarray(0, Math.floor(r() * buf.length));
  }
  return buf;
}

async function hashTree(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d)).sort()) {
      const p = join(d, e);
      const st = await lstat(p);
      h.update(`${p}:${st.mode}:`);
      if (st.isDirectory()) await walk(p);
      else if (st.isSymbolicLink()) h.update(await readlink(p));
      else h.update(await readFile(p));
    }
  };
  await walk(dir);
  return h.digest('hex');
}

test('random and mutated hostile tars never write outside the container root', { timeout: 300_000 }, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const seconds = Number(process.env.FUZZ_SECONDS ?? 20);
  console.log(`# tar fuzz: FUZZ_SEED=${seed} FUZZ_SECONDS=${seconds}`);
  const r = rng(seed);
  const base = await mkdtemp(join(tmpdir(), 'atomhost-fuzz-'));
  const sentinel = join(base, 'sentinel');
  await mkdir(join(sentinel, 'keep'), { recursive: true });
  await writeFile(join(sentinel, 'keep', 'file'), 'must stay\n');
  await writeFile(join(sentinel, 'passwd'), 'root:x:0:0\n');
  const before = await hashTree(sentinel);
  let runs = 0;
  let refused = 0;
  try {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const root = join(base, 'work', String(runs), 'rootfs');
      await mkdir(root, { recursive: true });
      const blob = join(base, 'work', String(runs), 'layer.tar');
      // Two layers, as an image has: the second is checked against the tree the first left.
      const tree: ImageTree = new Map();
      let ok = true;
      for (let layer = 0; layer < 2 && ok; layer++) {
        await writeFile(blob, await makeTar(r));
        try {
          await scanLayer(blob, `fuzz ${seed}/${runs}/${layer}`, tree);
          await unpackLayer(blob, root, `fuzz ${seed}/${runs}/${layer}`);
        } catch (err) {
          assert.ok(err instanceof Error, `run ${runs}: a non-Error was thrown`);
          ok = false;
          refused++;
        }
      }
      assert.equal(await hashTree(sentinel), before, `run ${runs} (FUZZ_SEED=${seed}) changed the sentinel tree outside the root`);
      await rm(join(base, 'work', String(runs)), { recursive: true, force: true });
      runs++;
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  console.log(`# tar fuzz: ${runs} images, ${refused} refused, sentinel unchanged`);
  assert.ok(runs > 20, `only ${runs} runs in ${seconds} s`);
});
