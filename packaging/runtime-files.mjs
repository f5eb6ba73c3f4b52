// What `atomhost` and `atomhostd` need at run time, relative to the checkout, sorted, one a
// line (run after scripts/build.sh; from any directory):
//   (default)    files: the bundles and their chunks (dist/bin, scripts/bundle.mjs) and the
//                libostree addon
//   --modules    npm package directories: those the bundles leave external
//                (dist/bin/externals.txt: systemd-journald) and their dependencies
// The package (scripts/package.sh) copies these and nothing else (the rest of node_modules
// is inside the bundles); the composed OS installs that package.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(ROOT);
const BIN = 'dist/bin';
const ADDON = 'ostree-bridge/native/build/Release/ostree_bridge.node';

function fail(msg) {
  console.error(`runtime-files: ${msg}`);
  process.exit(1);
}

function files() {
  for (const f of [`${BIN}/atomhost.js`, `${BIN}/atomhostd.js`, `${BIN}/externals.txt`, ADDON]) {
    if (!existsSync(f)) fail(`${f} is missing (run scripts/build.sh first)`);
  }
  const bin = readdirSync(BIN).filter((f) => f.endsWith('.js') || f === 'package.json').map((f) => `${BIN}/${f}`);
  return [...bin, ADDON];
}

/** node_modules/NAME as Node resolves it from DIR: DIR's own node_modules, then each parent's. */
function locate(name, dir) {
  for (let d = dir; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === ROOT || d === dirname(d)) return null;
  }
}

function modules() {
  const want = readFileSync(`${BIN}/externals.txt`, 'utf8').split('\n').filter(Boolean);
  const seen = new Set();
  const todo = want.map((name) => [name, ROOT, true]);
  while (todo.length) {
    const [name, from, required] = todo.pop();
    const dir = locate(name, from);
    if (!dir) {
      if (required) fail(`${name} (needed by ${relative(ROOT, from) || 'the bundles'}) is not installed (run npm ci)`);
      continue;
    }
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const d of Object.keys(pkg.dependencies ?? {})) todo.push([d, dir, true]);
    for (const d of Object.keys(pkg.optionalDependencies ?? {})) todo.push([d, dir, false]);
  }
  return [...seen].map((d) => relative(ROOT, resolve(d)));
}

console.log((process.argv[2] === '--modules' ? modules() : files()).sort().join('\n'));
