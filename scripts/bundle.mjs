// Bundles the compiled entry points (dist/cli/main.js, dist/agent/main.js) into
// dist/bin/atomhost.js and dist/bin/atomhostd.js with esbuild, the npm modules included.
// Chunks are split along the dynamic imports, so `atomhost --version` still loads one
// small file and `status` only what it runs. dist/bin sits as deep as dist/cli: the
// paths that native.ts and compose.ts derive from import.meta.url stay the same.
// Left outside (found at run time, relative to dist/bin): the libostree addon and
// systemd-journald (loaded through createRequire, with its own addon) under node_modules.
// The launchers that name node run atomhostd with --max-semi-space-size=1 (sandbox/testhost/
// boot.sh, scripts/package.sh, compose/compose.ts): a 1 MiB young generation keeps a
// long-running daemon about 9 MiB smaller under load (docs/benchmarks.md, atomhostd).
// Writes dist/bin/externals.txt: the npm packages the bundles still need at run time
// (packaging copies these and their dependencies, not the whole node_modules).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';

const OUT = 'dist/bin';
// Loaded by createRequire(import.meta.url) at run time (agent/journal.ts): esbuild does not
// see it, so it is named here for packaging.
const RUNTIME_PACKAGES = ['systemd-journald'];

await rm(OUT, { recursive: true, force: true });
const result = await build({
  entryPoints: { atomhost: 'dist/cli/main.js', atomhostd: 'dist/agent/main.js' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  splitting: true,
  outdir: OUT,
  chunkNames: 'chunk-[hash]',
  // x11: dbus-next's optional X11 bus discovery, never used for the system bus.
  external: ['*.node', 'x11'],
  // CommonJS modules in an ESM bundle call require() for Node's built-ins.
  banner: { js: "import { createRequire as __atomhostRequire } from 'node:module'; const require = __atomhostRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
});
// ESM without a package.json lookup up the tree; the bundle needs no other field.
await writeFile(`${OUT}/package.json`, '{ "type": "module" }\n');
const bare = new Set(RUNTIME_PACKAGES);
for (const out of Object.values(result.metafile.outputs)) {
  for (const i of out.imports) {
    const builtin = i.path.startsWith('node:') || builtinModules.includes(i.path.split('/')[0]);
    // esbuild leaves a missing module external only inside a try/catch: dbus-next's
    // optional usocket, which it replaces with net when absent.
    if (i.external && !builtin && !i.path.endsWith('.node') && existsSync(`node_modules/${i.path}`)) bare.add(i.path);
  }
}
await writeFile(`${OUT}/externals.txt`, [...bare].sort().join('\n') + '\n');
