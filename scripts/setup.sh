#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12 machine (Node 20, npm, python3, make, g++):
# Debian packages, npm dependencies, the libostree addon, the TypeScript build, and
# `atomhost`/`atomhostd` on PATH. Quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  ostree libostree-dev pkg-config libsystemd-dev   # the addon and journald bindings
  runc docker-registry skopeo umoci podman         # system containers, their tests and benches
  etcd-server etcd-client                          # fleet lock state
  busybox-static dbus polkitd pkexec psmisc curl    # sandbox trees, the test host
  python3-gi gir1.2-ostree-1.0                     # the raw-libostree rollback baseline in bench/
  fdisk parted xfsprogs dosfstools lvm2 e2fsprogs openssl  # kickstart provisioning
  apache2-utils hyperfine                          # registry auth in tests, benchmarks
  gpg gpg-agent gpgconf                            # signed OS commits (tests sign with real keys)
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
  echo "atomhost setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm dependencies: again only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "atomhost setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

bash scripts/build.sh

if [ "$(id -u)" -eq 0 ]; then
  for bin in atomhost atomhostd; do
    target="$PWD/dist/$([ $bin = atomhost ] && echo cli || echo agent)/main.js"
    chmod +x "$target" 2>/dev/null || true
    [ "$(readlink -f /usr/local/bin/$bin 2>/dev/null)" = "$target" ] || ln -sf "$target" "/usr/local/bin/$bin"
  done
fi
