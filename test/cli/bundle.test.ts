// The bundles (dist/bin, scripts/bundle.mjs) run where no node_modules sit beside them (the
// Debian package, the composed OS): every module they load at run time must be a Node.js
// built-in, one of the externals shipped with them (externals.txt), or an optional module
// its library tries and does without. A module found by a runtime require (createRequire)
// instead of an import is not bundled: this is the check that would have caught `yaml`
// missing from the composed OS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';

const BIN = new URL('../../bin/', import.meta.url).pathname;
/** Tried inside try/catch by their libraries: dbus-next's optional transports, undici's SQLite cache (Node 22+). */
const OPTIONAL = new Set(['usocket', 'x11', 'node:sqlite']);

test('the bundles load only built-ins, their shipped externals and optional modules at run time', () => {
  const externals = new Set(readFileSync(join(BIN, 'externals.txt'), 'utf8').split('\n').filter(Boolean));
  assert.ok(externals.has('systemd-journald'), 'externals.txt lists the journald addon');
  const found = new Map<string, string>();
  for (const f of readdirSync(BIN).filter((n) => n.endsWith('.js'))) {
    // require("x"), import("x"), and createRequire(…)("x")
    for (const m of readFileSync(join(BIN, f), 'utf8').matchAll(/(?:require|import|\))\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
      if (!isBuiltin(m[1]) && !found.has(m[1])) found.set(m[1], f);
    }
  }
  const missing = [...found].filter(([name]) => !externals.has(name) && !OPTIONAL.has(name));
  assert.deepEqual(missing, [], 'loaded at run time but neither bundled nor shipped: module, bundle file');
});
