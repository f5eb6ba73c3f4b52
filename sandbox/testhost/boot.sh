#!/usr/bin/env bash
# Boots a real systemd as PID 1 of a private test host and prints the host PID of that
# systemd on stdout once the system is up. Never on the machine's real root: the root
# is an overlay of / (lower) with an upper and work directory on a tmpfs in DIR, in new
# PID, mount, UTS and IPC namespaces; /proc is fresh, /sys and /dev are bound (slaves),
# /run and /tmp are tmpfs, and systemd runs after pivot_root into the overlay.
#
#   boot.sh DIR          prepare DIR (a new tmpfs), install the project into the upper
#                        layer, boot, wait for running/degraded; prints the PID
#   boot.sh --inner DIR  (internal) the part that runs inside the new namespaces
#
# A DIR that was powered off with `shutdown.sh --keep DIR` boots again with its upper
# layer (its /etc and /var as the last boot left them): a reboot. Optional, in DIR:
#   binds    lines "SRC DST": SRC of the machine bound at DST inside (state kept across boots)
#   cmdline  bound over /proc/cmdline: the kernel arguments of the boot entry "chosen"
#   enable   unit names to enable (multi-user.target.wants) before booting
#   atomhostd.env  installed as /etc/atomhost/atomhostd.env (ATOMHOST_SYSROOT=…)
#   no-project     do not install the checkout's units, D-Bus/polkit files and wrappers
#
# The network namespace is shared with the machine: servers on 127.0.0.1 outside are
# reachable inside and the other way round.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
CHECKOUT=/usr/lib/atomhost-checkout

if [ "${1:-}" = "--inner" ]; then
  D="$2"
  mount -t overlay atomhost-testhost -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$D/root"
  mount -t proc proc "$D/root/proc"
  [ -f "$D/cmdline" ] && mount --bind "$D/cmdline" "$D/root/proc/cmdline"
  if [ -f "$D/binds" ]; then
    while read -r src dst; do
      [ -n "$src" ] || continue
      mkdir -p "$D/root$dst" && mount --rbind "$src" "$D/root$dst"
    done < "$D/binds"
  fi
  mount --rbind /sys "$D/root/sys" && mount --make-rslave "$D/root/sys"
  mount --rbind /dev "$D/root/dev" && mount --make-rslave "$D/root/dev"
  mount -t tmpfs -o mode=0755,size=1g tmpfs "$D/root/run"
  mount -t tmpfs -o mode=1777,size=2g tmpfs "$D/root/tmp"
  # The project (and its node_modules) at the same path inside, wherever the checkout
  # is: under /tmp, or on a filesystem the overlay's lower layer does not show.
  mkdir -p "$D/root$PROJECT"
  mount --rbind "$PROJECT" "$D/root$PROJECT"
  # And at a fixed path under /usr, which hardened units still see (PrivateTmp= and
  # ProtectHome= hide a checkout under /tmp or /root): the atomhost wrappers run it there.
  mkdir -p "$D/root$CHECKOUT"
  mount --rbind "$PROJECT" "$D/root$CHECKOUT"
  hostname atomhost-testhost
  cd "$D/root"
  mkdir -p .oldroot
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  rmdir /.oldroot 2>/dev/null || true
  export container=other
  exec /lib/systemd/systemd --log-target=console --show-status=false
fi

D="${1:?usage: boot.sh DIR}"
[ "$(id -u)" -eq 0 ] || { echo "boot.sh: needs root (namespaces, mounts)" >&2; exit 1; }
mkdir -p "$D"
mountpoint -q "$D" || mount -t tmpfs -o mode=0755,size=4g atomhost-testhost "$D"
mkdir -p "$D/upper" "$D/work" "$D/root"
U="$D/upper"

# --- install the project into the upper layer -------------------------------------
install -d "$U/etc/systemd/system" "$U/etc/dbus-1/system.d" "$U/usr/share/dbus-1/system-services" \
  "$U/usr/share/polkit-1/actions" "$U/usr/local/bin" "$U/etc/atomhost" "$U/etc/systemd/system/multi-user.target.wants"
# DIR/no-project: boot without the checkout's atomhost (a test installs the package).
if [ ! -f "$D/no-project" ]; then
  for f in "$PROJECT"/units/*.service "$PROJECT"/units/*.slice "$PROJECT"/units/*.target "$PROJECT"/units/*.path; do
    [ -e "$f" ] && install -m 0644 "$f" "$U/etc/systemd/system/"
  done
  [ -e "$PROJECT/units/io.atomhost.Agent1.conf" ] && install -m 0644 "$PROJECT/units/io.atomhost.Agent1.conf" "$U/etc/dbus-1/system.d/"
  [ -e "$PROJECT/units/io.atomhost.Agent1.dbus-service" ] && install -m 0644 "$PROJECT/units/io.atomhost.Agent1.dbus-service" "$U/usr/share/dbus-1/system-services/io.atomhost.Agent1.service"
  [ -e "$PROJECT/units/io.atomhost.policy" ] && install -m 0644 "$PROJECT/units/io.atomhost.policy" "$U/usr/share/polkit-1/actions/"
  NODE="$(command -v node)"
  printf '#!/bin/sh\nexec %s %s/dist/bin/atomhost.js "$@"\n' "$NODE" "$CHECKOUT" > "$U/usr/local/bin/atomhost"
  # --max-semi-space-size=1: the daemon's young generation (docs/benchmarks.md, atomhostd)
  printf '#!/bin/sh\nexec %s --max-semi-space-size=1 %s/dist/bin/atomhostd.js "$@"\n' "$NODE" "$CHECKOUT" > "$U/usr/local/bin/atomhostd"
  chmod 0755 "$U/usr/local/bin/atomhost" "$U/usr/local/bin/atomhostd"
fi

# Units that cannot work, or must not run, in a namespace host: consoles, udev, the
# machine's own services (they would bind the shared network), timers, device mappers.
for u in getty@tty1.service serial-getty@.service console-getty.service getty.target \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service \
  systemd-networkd.service systemd-networkd.socket systemd-resolved.service systemd-timesyncd.service systemd-logind.service \
  systemd-pstore.service systemd-firstboot.service systemd-remount-fs.service systemd-hwdb-update.service \
  docker-registry.service etcd.service etcd2.service postgresql.service podman.service podman.socket podman-restart.service podman-auto-update.service podman-auto-update.timer \
  e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer man-db.timer \
  lvm2-monitor.service lvm2-lvmpolld.socket dm-event.socket blk-availability.service remote-fs.target \
  cron.service ssh.service ssh.socket systemd-tmpfiles-clean.timer; do
  ln -sf /dev/null "$U/etc/systemd/system/$u"
done
ln -sf /lib/systemd/system/multi-user.target "$U/etc/systemd/system/default.target"
[ -f "$D/atomhostd.env" ] && install -m 0644 "$D/atomhostd.env" "$U/etc/atomhost/atomhostd.env"
if [ -f "$D/enable" ]; then
  for u in $(cat "$D/enable"); do ln -sf "/etc/systemd/system/$u" "$U/etc/systemd/system/multi-user.target.wants/$u"; done
fi
# The machine's root may hold a stale machine-id or none; give the host its own, at its
# first boot only: a reboot keeps it, as a real host's does (a FleetLock node id derives from it).
if [ ! -e "$D/machine-id-set" ]; then
  rm -f "$U/etc/machine-id"; : > "$U/etc/machine-id"; : > "$D/machine-id-set"
fi
# The boot must not see the machine's files that tmpfiles would clean: /tmp and /run are
# tmpfs inside; /var/tmp is copied up on first write only.

# --- boot --------------------------------------------------------------------------
setsid unshare --pid --fork --mount --uts --ipc --propagation private \
  bash "$HERE/boot.sh" --inner "$D" </dev/null >"$D/console.log" 2>&1 &
UNSHARE=$!
echo "$UNSHARE" > "$D/unshare.pid"
PID=""
for _ in $(seq 1 100); do
  PID="$(cat "/proc/$UNSHARE/task/$UNSHARE/children" 2>/dev/null | awk '{print $1}')" || true
  if [ -n "$PID" ] && [ "$(readlink "/proc/$PID/exe" 2>/dev/null)" = "$(readlink -f /lib/systemd/systemd)" ]; then break; fi
  kill -0 "$UNSHARE" 2>/dev/null || { echo "boot.sh: the host did not start:" >&2; cat "$D/console.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PID" ] || { echo "boot.sh: no systemd PID" >&2; exit 1; }
echo "$PID" > "$D/pid"
# Wait until the system is up: running, or degraded (reported, with the failed units).
state=""
for _ in $(seq 1 120); do
  state="$(timeout 5 nsenter -t "$PID" -m -p -u -i systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running|degraded) break ;; esac
  kill -0 "$PID" 2>/dev/null || { echo "boot.sh: systemd exited during boot:" >&2; tail -50 "$D/console.log" >&2; exit 1; }
  sleep 0.5
done
case "$state" in
  running) ;;
  degraded)
    echo "boot.sh: the test host is degraded; failed units:" >&2
    nsenter -t "$PID" -m -p -u -i systemctl --failed --no-legend --plain >&2 || true ;;
  *) echo "boot.sh: the test host did not come up (state: ${state:-none})" >&2; tail -50 "$D/console.log" >&2; exit 1 ;;
esac
echo "$PID"
