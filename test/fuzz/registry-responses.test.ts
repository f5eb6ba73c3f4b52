// Fuzzing what a registry answers: valid manifests, indexes and configs are mutated
// (truncated, bytes flipped, fields of the wrong type, huge arrays, wrong media types,
// negative or absurd sizes, keys removed) or cut off short of their Content-Length, and
// served by the hostile registry to the pull function the CLI uses (ImageStore.pull on a
// real sysroot). Invariant: every pull ends
// with a typed AtomhostError naming the image (never a TypeError, a crash or a hang) or,
// when the mutation left a valid image, succeeds; a failed pull stores nothing.
// Reproducible: the seed is printed; ATOMHOST_FUZZ_SEED replays it, ATOMHOST_FUZZ_ITER
// runs that many cases instead of the default ~25 s budget (for a longer run:
// ATOMHOST_FUZZ_ITER=5000 node scripts/run-tests.mjs registry-responses).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { HostileRegistry, blob, bytesOf, makeImage, manifestFor, storeState, OCI_INDEX, OCI_MANIFEST, type Blob, type Image } from '../helpers/hostile-registry.js';
import { Sysroot } from '../../ostree-bridge/sysroot.js';
import { ImageStore } from '../../containers/store.js';
import { AtomhostError } from '../../core/errors.js';
import { rng } from '../helpers/fuzz.js';

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const ODD_VALUES = (r: Rand): unknown[] => [null, 0, -1, 1.5, 2 ** 60, -(2 ** 53), '', 'x', 'sha256:', `md5:${'0'.repeat(32)}`, `sha256:${'g'.repeat(64)}`, [], {}, [null], true, 'a'.repeat(1 + Math.floor(r() * 100_000)), { mediaType: 5 }];
const MEDIA_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.container.image.v1+json', 'text/html', '', 'application/vnd.oci.image.layer.v1.tar+zstd'];

/** Every [parent, key] of a JSON document, so one can be replaced or removed. */
function slots(doc: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []): typeof out {
  if (doc && typeof doc === 'object') {
    for (const k of Array.isArray(doc) ? doc.keys() : Object.keys(doc)) {
      out.push([doc as Record<string, unknown>, k as string]);
      slots((doc as Record<string, unknown>)[k as string], out);
    }
  }
  return out;
}

/** One structural or byte-level mutation of a JSON document; returns the bytes to serve. */
function mutate(r: Rand, doc: Record<string, unknown>): { bytes: Buffer; how: string } {
  const d = structuredClone(doc);
  const all = slots(d);
  const kind = pick(r, ['type', 'type', 'remove', 'huge', 'mediaType', 'size', 'truncate', 'flip', 'notObject'] as const);
  const [parent, key] = pick(r, all);
  switch (kind) {
    case 'type': {
      const v = pick(r, ODD_VALUES(r));
      (parent as Record<string, unknown>)[key] = v;
      return { bytes: Buffer.from(JSON.stringify(d)), how: `${String(key)} = ${JSON.stringify(v)?.slice(0, 40)}` };
    }
    case 'remove':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      return { bytes: Buffer.from(JSON.stringify(d)), how: `remove ${String(key)}` };
    case 'huge': {
      const arrays = all.filter(([p, k]) => Array.isArray((p as Record<string, unknown>)[k]));
      const n = pick(r, [1000, 100_000, 300_000]);
      const el = pick(r, [null, 0, {}, 'x']);
      if (arrays.length) {
        const [p, k] = pick(r, arrays);
        (p as Record<string, unknown>)[k] = Array.from({ length: n }, () => el);
      } else d.extra = Array.from({ length: n }, () => el);
      return { bytes: Buffer.from(JSON.stringify(d)), how: `huge array of ${n} ${JSON.stringify(el)}` };
    }
    case 'mediaType': {
      const withType = all.filter(([, k]) => k === 'mediaType');
      const v = pick(r, MEDIA_TYPES);
      if (withType.length) {
        const [p, k] = pick(r, withType);
        (p as Record<string, unknown>)[k] = v;
      } else d.mediaType = v;
      return { bytes: Buffer.from(JSON.stringify(d)), how: `mediaType ${v}` };
    }
    case 'size': {
      const sizes = all.filter(([, k]) => k === 'size');
      const v = pick(r, [-1, -(2 ** 40), 0, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e308]);
      if (sizes.length) {
        const [p, k] = pick(r, sizes);
        (p as Record<string, unknown>)[k] = v;
      }
      return { bytes: Buffer.from(JSON.stringify(d)), how: `size ${v}` };
    }
    case 'truncate': {
      const b = Buffer.from(JSON.stringify(d));
      const n = Math.floor(r() * b.length);
      return { bytes: b.subarray(0, n), how: `truncated to ${n}` };
    }
    case 'flip': {
      const b = Buffer.from(JSON.stringify(d));
      const n = 1 + Math.floor(r() * 6);
      for (let i = 0; i < n; i++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      return { bytes: b, how: `${n} bytes flipped` };
    }
    case 'notObject': {
      const v = pick(r, ['null', '[]', '5', '"manifest"', '[{}]', 'true', '']);
      return { bytes: Buffer.from(v), how: `document ${v || '(empty)'}` };
    }
  }
}

let f: OsFixture;
let reg: HostileRegistry;
let store: ImageStore;
let img: Image;

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.create();
  reg = await HostileRegistry.start();
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  store = new ImageStore(await Sysroot.open(f.sysroot));
  img = await makeImage();
});
after(async () => {
  await reg?.stop();
  await f?.dispose();
});

/** Serves one mutated answer for case `i`; returns the image reference (and pinned digest) to pull. */
function serveCase(r: Rand, i: number): { image: string; digest?: string; how: string } {
  const repo = 'fuzz';
  const tag = `c${i}`;
  reg.reset();
  reg.on(`/v2/${repo}/blobs/${img.layer.digest}`, bytesOf(img.layer.bytes));
  reg.on(`/v2/${repo}/blobs/${img.config.digest}`, bytesOf(img.config.bytes));
  reg.on(`/v2/${repo}/manifests/${img.manifest.digest}`, bytesOf(img.manifest.bytes, OCI_MANIFEST));
  const target = pick(r, ['manifest', 'manifest', 'index', 'config', 'pinned', 'cut'] as const);
  if (target === 'cut') {
    // Transport lies: a Content-Length larger than what is sent before the connection drops.
    const which = pick(r, ['manifest', 'config', 'layer'] as const);
    const bytes = which === 'manifest' ? img.manifest.bytes : img[which].bytes;
    const keep = Math.floor(r() * bytes.length);
    const path = which === 'manifest' ? `/v2/${repo}/manifests/${tag}` : `/v2/${repo}/blobs/${img[which].digest}`;
    if (which !== 'manifest') reg.on(`/v2/${repo}/manifests/${tag}`, bytesOf(img.manifest.bytes, OCI_MANIFEST));
    reg.on(path, (_req, res) => {
      res.writeHead(200, { 'content-length': bytes.length + 1 + Math.floor(r() * 1000) });
      res.write(bytes.subarray(0, keep), () => res.destroy());
    });
    return { image: `${reg.host}/${repo}:${tag}`, how: `${which} cut after ${keep} bytes` };
  }
  if (target === 'manifest') {
    const m = mutate(r, img.manifestDoc);
    reg.on(`/v2/${repo}/manifests/${tag}`, bytesOf(m.bytes, pick(r, [OCI_MANIFEST, OCI_INDEX, 'text/plain'])));
    return { image: `${reg.host}/${repo}:${tag}`, how: `manifest: ${m.how}` };
  }
  if (target === 'pinned') {
    // Served for the honest digest: only the digest check stands between it and the store.
    const m = mutate(r, img.manifestDoc);
    reg.on(`/v2/${repo}/manifests/${img.manifest.digest}`, bytesOf(m.bytes, OCI_MANIFEST));
    return { image: `${reg.host}/${repo}`, digest: img.manifest.digest, how: `pinned manifest: ${m.how}` };
  }
  if (target === 'index') {
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: img.manifest.digest, size: img.manifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } }] };
    const m = mutate(r, index);
    reg.on(`/v2/${repo}/manifests/${tag}`, bytesOf(m.bytes, OCI_INDEX));
    return { image: `${reg.host}/${repo}:${tag}`, how: `index: ${m.how}` };
  }
  // A mutated config under its own (honest) digest, so its content is what is tested.
  const c = mutate(r, img.configDoc);
  const config: Blob = blob(c.bytes);
  const manifest = blob(Buffer.from(JSON.stringify(manifestFor(config, [img.layer]))));
  reg.on(`/v2/${repo}/blobs/${config.digest}`, bytesOf(config.bytes));
  reg.on(`/v2/${repo}/manifests/${tag}`, bytesOf(manifest.bytes, OCI_MANIFEST));
  return { image: `${reg.host}/${repo}:${tag}`, how: `config: ${c.how}` };
}

test('registry responses: mutated manifests, indexes and configs end in a typed error naming the image, or a valid pull; a failed pull stores nothing', { timeout: 600_000 }, async (t) => {
  if (!requireRoot(t, 'mounts a tmpfs sysroot')) return;
  // FUZZ_SEED too, as README's command for every fuzz file gives it.
  const seed = Number(process.env.ATOMHOST_FUZZ_SEED ?? process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const iterations = process.env.ATOMHOST_FUZZ_ITER ? Number(process.env.ATOMHOST_FUZZ_ITER) : Infinity;
  const budgetMs = process.env.ATOMHOST_FUZZ_ITER ? Infinity : 25_000;
  console.log(`# registry fuzz: ATOMHOST_FUZZ_SEED=${seed}${Number.isFinite(iterations) ? ` ATOMHOST_FUZZ_ITER=${iterations}` : ' (~25 s)'}`);
  const r = rng(seed);
  const end = Date.now() + budgetMs;
  const outcomes: Record<string, number> = {};
  let i = 0;
  for (; i < iterations && Date.now() < end; i++) {
    const c = serveCase(r, i);
    const where = `case ${i} (ATOMHOST_FUZZ_SEED=${seed}), ${c.how}`;
    const before = await storeState(f.sysroot);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${where}: the pull hung for 15 s`)), 15_000);
    });
    try {
      await Promise.race([store.pull(c.image, { digest: c.digest }), hang]);
      outcomes.pulled = (outcomes.pulled ?? 0) + 1;
    } catch (err) {
      assert.ok(err instanceof AtomhostError, `${where}: not a typed error: ${(err as Error)?.stack ?? String(err)}`);
      assert.ok(err.message.includes('/fuzz'), `${where}: the error does not name the image: ${err.message}`);
      assert.doesNotMatch(err.message, /\bundefined\b|\[object Object\]/, `${where}: ${err.message}`);
      outcomes[err.code] = (outcomes[err.code] ?? 0) + 1;
      assert.deepEqual(await storeState(f.sysroot), before, `${where}: a failed pull stored something`);
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`# registry fuzz: ${i} cases, outcomes ${JSON.stringify(outcomes)}`);
  assert.ok(i >= 20, `only ${i} cases ran`);
});
