// Prints the compiled files the CLI and the agent can load (one path a line, sorted,
// relative to the checkout): the closure of the relative imports, static and dynamic,
// of the given entry points. A whole-directory copy would also ship test/, bench/ and
// sandbox/ code; this takes exactly what `atomhost` and `atomhostd` can reach.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
const seen = new Set();
const todo = process.argv.slice(2).map((p) => resolve(p));
while (todo.length) {
  const file = todo.pop();
  if (seen.has(file)) continue;
  if (!existsSync(file)) {
    console.error(`runtime-files: ${file} is imported but missing (build first)`);
    process.exit(1);
  }
  seen.add(file);
  if (!file.endsWith('.js')) continue;
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) todo.push(join(dirname(file), m[1]));
}
console.log([...seen].map((f) => relative(process.cwd(), f)).sort().join('\n'));
