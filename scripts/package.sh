#!/usr/bin/env bash
# Builds atomhost as a Debian package: dist-pkg/atomhost_VERSION_amd64.deb (or OUT).
#   scripts/package.sh [--with-node] [OUT]      (npm run package -- --with-node)
# --with-node: the package carries its runtime, the build machine's `node` (stripped) as
# /usr/lib/atomhost/node; version VERSION+nodeNODEVERSION, no nodejs dependency, and
# dpkg-shlibdeps reads node's libraries too. For a system whose nodejs is older than 20
# (Debian 12): the OS image compose/compose.ts makes.
#   /usr/lib/atomhost      the bundles dist/bin/atomhost{,d}.js and their chunks (npm modules
#                          inside), package.json, the npm modules they leave external
#                          (systemd-journald), the addons: packaging/runtime-files.mjs
#   /usr/bin/atomhost{,d}  wrappers running it on the system's node (nodejs >= 20), or on
#                          /usr/lib/atomhost/node (--with-node)
#   /lib/systemd/system, /usr/share/dbus-1/{system.d,system-services},
#   /usr/share/polkit-1/actions   units/ with /usr/local/bin → /usr/bin (generated)
# Depends: nodejs (>= 20) plus what dpkg-shlibdeps finds for the native addons
# (libostree-1-1, libsystemd0, libc6, …). Reproducible: SOURCE_DATE_EPOCH is the last
# commit's time, every mtime is clamped to it, owners are root, the file list sorted.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT="$PWD"
P="$PROJECT/packaging"

WITH_NODE=""
if [ "${1:-}" = --with-node ]; then WITH_NODE=1; shift; fi
case "${1:-}" in -*) echo "package.sh: unknown option $1 (usage: package.sh [--with-node] [OUT])" >&2; exit 2 ;; esac

bash scripts/build.sh
VERSION="$(node -p 'require("./package.json").version')"
NODE_BIN="$(readlink -f "$(command -v node)")"
if [ -n "$WITH_NODE" ]; then
  # The variant says what it carries in its version: dpkg -s tells the two apart.
  VERSION="$VERSION+node$("$NODE_BIN" -p process.versions.node)"
  RUNTIME=/usr/lib/atomhost/node
else
  RUNTIME=/usr/bin/node
fi
OUT="${1:-dist-pkg/atomhost_${VERSION}_amd64.deb}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
umask 022

WORK="$(mktemp -d /tmp/atomhost-pkg-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
S="$WORK/root"
L="$S/usr/lib/atomhost"
mkdir -p "$L" "$S/DEBIAN"

# --- the code: the bundles, their chunks and the libostree addon (packaging/runtime-files.mjs)
node "$P/runtime-files.mjs" > "$WORK/files"
while read -r f; do install -D -m 0644 "$f" "$L/$f"; done < "$WORK/files"
# "type": "module" makes node load dist/ as ESM; the rest documents the version.
node -e 'const p=require("./package.json"); process.stdout.write(JSON.stringify({name:p.name,version:p.version,description:p.description,type:p.type,license:p.license,engines:p.engines,dependencies:p.dependencies},null,2)+"\n")' > "$L/package.json"

# --- the npm modules the bundles leave external, as installed and built in the checkout:
# no download, and the same modules (and journald addon) the tests ran with.
node "$P/runtime-files.mjs" --modules | while read -r r; do
  mkdir -p "$(dirname "$L/$r")"
  [ -e "$L/$r" ] || cp -a "$r" "$L/$r"
done
# Native modules: keep the built .node, drop the compiler's intermediates.
find "$L/node_modules" -name binding.gyp -printf '%h\n' | while read -r d; do
  [ -d "$d/build" ] || continue
  find "$d/build" -mindepth 1 \( -path "$d/build/Release" -o -path "$d/build/Release/*.node" \) -prune -o -print0 | xargs -0r rm -rf
  find "$d/build/Release" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
done
find "$L/node_modules" -name .bin -type d -prune -exec rm -rf {} +
rm -f "$L/node_modules/.package-lock.json"
# The modules' own tests and examples, npm's ignore files, and prebuilt addons for other
# platforms (bare-* ship them for the Bare runtime): nothing Node loads here, and lintian
# rightly calls them errors (binaries of other architectures, unstripped objects).
find "$L/node_modules" -name .npmignore -delete
find "$L/node_modules" -mindepth 2 -maxdepth 5 -type d \( -name test -o -name tests -o -name example -o -name examples \) \
  -exec test -f '{}/../package.json' \; -prune -exec rm -rf {} +
find "$L/node_modules" -path '*/prebuilds/*' -mindepth 3 -maxdepth 4 -type d ! -name linux-x64 ! -name prebuilds -prune -exec rm -rf {} +
# Modes as a package has them: scripts (#!, e.g. the two entry points and the modules'
# bin scripts) 0755, every other file 0644 (npm keeps a module's stray x bits).
find "$L" -type f -exec chmod 0644 {} +
find "$L" -type f -exec grep -lZ -m1 '^#!' {} + | while IFS= read -r -d '' f; do
  [ "$(head -c2 "$f")" = '#!' ] && chmod 0755 "$f"
done
find "$L" \( -name '*.node' -o -name '*.bare' \) -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
if [ -n "$WITH_NODE" ]; then
  # The very runtime the tests ran on (no download), without its debug information.
  install -m 0755 "$NODE_BIN" "$L/node"
  strip --strip-unneeded --remove-section=.comment "$L/node"
  [ "$("$L/node" -p process.version)" = "$("$NODE_BIN" -p process.version)" ] || { echo "package.sh: the stripped $L/node does not run" >&2; exit 1; }
  # No script names a node interpreter (which would be nodejs's): the wrappers run the
  # bundles on the carried node. A comment keeps the line numbers; nan's tool is not run.
  find "$L" -type f -perm -0100 ! -path "$L/node" -exec grep -lZ -m1 '^#!/usr/bin/env node' {} + | while IFS= read -r -d '' f; do
    sed -i '1s|^#!/usr/bin/env node$|// run by /usr/bin/atomhost{,d} on /usr/lib/atomhost/node|' "$f"
    chmod 0644 "$f"
  done
  install -D -m 0644 "$P/lintian-overrides-with-node" "$S/usr/share/lintian/overrides/atomhost"
fi

# --- wrappers
install -d "$S/usr/bin"
# atomhostd with a 1 MiB young generation (docs/benchmarks.md, atomhostd).
printf '#!/bin/sh\nexec %s /usr/lib/atomhost/dist/bin/atomhost.js "$@"\n' "$RUNTIME" > "$S/usr/bin/atomhost"
printf '#!/bin/sh\nexec %s --max-semi-space-size=1 /usr/lib/atomhost/dist/bin/atomhostd.js "$@"\n' "$RUNTIME" > "$S/usr/bin/atomhostd"
chmod 0755 "$S/usr/bin/atomhost" "$S/usr/bin/atomhostd"

# --- units, D-Bus and polkit files: units/ as they are, but naming /usr/bin
gen() { install -d "$(dirname "$2")"; sed 's|/usr/local/bin/|/usr/bin/|g' "$1" > "$2"; chmod 0644 "$2"; }
for f in units/*; do
  b="$(basename "$f")"
  case "$b" in
    *.dbus-service) gen "$f" "$S/usr/share/dbus-1/system-services/${b%.dbus-service}.service" ;;
    *.service|*.slice|*.target|*.timer|*.socket|*.path) gen "$f" "$S/lib/systemd/system/$b" ;;
    *.conf) gen "$f" "$S/usr/share/dbus-1/system.d/$b" ;;
    *.policy) gen "$f" "$S/usr/share/polkit-1/actions/$b" ;;
    *.tmpfiles) gen "$f" "$S/usr/lib/tmpfiles.d/${b%.tmpfiles}.conf" ;;
    *) echo "package.sh: units/$b: no place for this kind of file in the package" >&2; exit 1 ;;
  esac
done
if grep -rq /usr/local/ "$S/lib" "$S/usr/share/dbus-1"; then
  echo "package.sh: a packaged unit still names /usr/local" >&2; exit 1
fi

# --- docs
D="$S/usr/share/doc/atomhost"
install -D -m 0644 "$P/copyright" "$D/copyright"
date_r="$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$date_r/" "$P/changelog" | gzip -9n > "$D/changelog.gz"
chmod 0644 "$D/changelog.gz"
for m in atomhost.1 atomhostd.8; do
  install -d "$S/usr/share/man/man${m##*.}"
  sed "s/@VERSION@/$VERSION/" "$P/$m" | gzip -9n > "$S/usr/share/man/man${m##*.}/$m.gz"
done

# --- control: Depends from the addons' libraries (dpkg-shlibdeps reads the symbols files
# of the packages that ship them, giving the minimal versions), plus the runtime: nodejs,
# or with --with-node the libraries of the carried node (in the same dpkg-shlibdeps run).
mkdir -p "$WORK/src/debian"
printf 'Source: atomhost\n\nPackage: atomhost\nArchitecture: amd64\n' > "$WORK/src/debian/control"
mapfile -t addons < <(find "$L" -name '*.node' | sort; [ -z "$WITH_NODE" ] || echo "$L/node")
shlibs="$(cd "$WORK/src" && dpkg-shlibdeps -O "${addons[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || { echo "package.sh: dpkg-shlibdeps found no libraries for ${addons[*]}" >&2; exit 1; }
if [ -n "$WITH_NODE" ]; then depends="$shlibs"; else depends="nodejs (>= 20), $shlibs"; fi
for s in postinst prerm postrm; do install -m 0755 "$P/$s" "$S/DEBIAN/$s"; done
size="$(du -sk --exclude=DEBIAN "$S" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DEPENDS@/$depends/" -e "s/@INSTALLED_SIZE@/$size/" "$P/control.in" > "$S/DEBIAN/control"
(cd "$S" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' md5sum) > "$S/DEBIAN/md5sums"
chmod 0644 "$S/DEBIAN/control" "$S/DEBIAN/md5sums"

# --- reproducible: modes normalised (no group/other write), every mtime the same
chmod -R go-w "$S"
find "$S" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$(dirname "$OUT")"
case "$OUT" in dist-pkg/*) echo "*" > dist-pkg/.gitignore ;; esac
# ATOMHOST_DEB_COMPRESSION: xz (the default, Debian's) or none (compose builds a package it
# installs at once and throws away: compressing ~40 MB of node with xz is most of the build).
case "${ATOMHOST_DEB_COMPRESSION:=xz}" in xz|none) ;; *) echo "package.sh: ATOMHOST_DEB_COMPRESSION must be xz or none, not $ATOMHOST_DEB_COMPRESSION" >&2; exit 2 ;; esac
dpkg-deb --root-owner-group -Z"$ATOMHOST_DEB_COMPRESSION" --build "$S" "$OUT.tmp" >/dev/null
mv "$OUT.tmp" "$OUT"
echo "$OUT"
