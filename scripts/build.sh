#!/usr/bin/env bash
# Builds the libostree addon (when its source changed), the TypeScript (when any changed),
# and the bundles dist/bin/atomhost{,d}.js that every installed command runs (after either).
set -euo pipefail
cd "$(dirname "$0")/.."
addon=ostree-bridge/native/build/Release/ostree_bridge.node
if [ ! -f "$addon" ] || [ -n "$(find ostree-bridge/native -maxdepth 1 -newer "$addon" -type f)" ]; then
  echo "atomhost build: compiling the libostree addon" >&2
  # node-gyp needs Node's headers; Debian's nodejs ships them in /usr/include/node.
  [ -d /usr/include/node ] && export npm_config_nodedir=/usr
  (cd ostree-bridge/native && ../../node_modules/.bin/node-gyp rebuild --silent >&2)
fi
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find agent cli core containers systemd kickstart compose ostree-bridge sandbox fleet test bench tsconfig.json package.json -newer "$stamp" -name '*.ts' -o -newer "$stamp" -name '*.json' 2>/dev/null | grep -v node_modules | head -1)" ]; then
  echo "atomhost build: compiling TypeScript" >&2
  node_modules/.bin/tsc -p . >&2
  touch "$stamp"
fi
bundle=dist/bin/.bundle-stamp
if [ ! -f "$bundle" ] || [ "$stamp" -nt "$bundle" ] || [ package-lock.json -nt "$bundle" ] || [ scripts/bundle.mjs -nt "$bundle" ]; then
  echo "atomhost build: bundling dist/bin/atomhost.js and atomhostd.js" >&2
  node scripts/bundle.mjs >&2
  chmod +x dist/bin/atomhost.js dist/bin/atomhostd.js
  touch "$bundle"
fi
