#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12 machine (Node 20, npm, python3, make, g++):
# Debian packages, npm dependencies, the libostree addon, the TypeScript build, and
# `atomhost`/`atomhostd` on PATH. Quiet when everything is already in place; otherwise a
# line per step on stderr, and apt's, dpkg's, npm's and the build's own output in LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

# In the checkout (writable by whoever runs this, root in CI or not); *.log is git-ignored.
LOG="$PWD/.cache/setup.log"
mkdir -p "$(dirname "$LOG")"
echo "atomhost setup $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$LOG"

# Runs one step with its output in LOG; the project's own "atomhost …" lines still show.
# On failure: the step, the end of LOG and its path, and the step's exit code.
step() {
  local what=$1 rc=0
  shift
  [ -n "$what" ] && echo "atomhost setup: $what (log: $LOG)" >&2
  echo "== $(date -u +%H:%M:%S) $*" >> "$LOG"
  "$@" 2>&1 | tee -a "$LOG" | { grep --line-buffered '^atomhost ' >&2 || true; } || rc=$?
  if ((rc)); then
    echo "atomhost setup: failed (exit $rc): ${what:-$*}; the last lines of $LOG:" >&2
    tail -n 30 "$LOG" | sed 's/^/  | /' >&2
    echo "atomhost setup: the whole output is in $LOG" >&2
    exit "$rc"
  fi
}

PACKAGES=(
  ostree libostree-dev pkg-config libsystemd-dev   # the addon and journald bindings
  runc docker-registry skopeo umoci podman         # system containers, their tests and benches
  etcd-server etcd-client                          # fleet lock state
  busybox-static dbus polkitd pkexec psmisc curl    # sandbox trees, the test host
  python3-gi gir1.2-ostree-1.0                     # the raw-libostree rollback baseline in bench/
  fdisk parted xfsprogs dosfstools lvm2 e2fsprogs openssl  # kickstart provisioning
  apache2-utils hyperfine                          # registry auth in tests, benchmarks
  gpg gpg-agent gpgconf                            # signed OS commits (tests sign with real keys)
  lintian                                          # checks the Debian package (test/package, npm run package)
  mmdebstrap qemu-system-x86 qemu-utils grub-pc-bin grub2-common cpio socat udev  # compose, the VM host (grub-install asks udevadm for partitions)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "atomhost setup: these Debian packages are missing: ${missing[*]}" >&2
    echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  step "updating the package lists" apt-get update -qq
  step "installing Debian packages: ${missing[*]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm dependencies: again only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm dependencies" npm ci --no-audit --no-fund
fi

# build.sh says itself what it compiles (its "atomhost build: …" lines); nothing when up to date.
step "" bash scripts/build.sh

if [ "$(id -u)" -eq 0 ]; then
  for bin in atomhost atomhostd; do
    target="$PWD/dist/bin/$bin.js"   # the bundles (scripts/bundle.mjs)
    chmod +x "$target" 2>/dev/null || true
    [ "$(readlink -f /usr/local/bin/$bin 2>/dev/null)" = "$target" ] || ln -sf "$target" "/usr/local/bin/$bin"
  done
fi
