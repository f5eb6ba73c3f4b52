#!/usr/bin/env bash
# npm run testhost -- CMD…: boots a test host (boot.sh), runs CMD inside as root, prints
# its output and exit code, powers the host off and removes everything.
# Without CMD it runs `systemctl is-system-running` and `atomhost status`.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "testhost: needs root (namespaces, mounts)" >&2; exit 1; }
D="$(mktemp -d /tmp/atomhost-testhost.XXXXXX)"
trap 'bash "$HERE/shutdown.sh" "$D"' EXIT
trap 'exit 130' INT TERM
# The host's disk: a sysroot with its first deployment, bound at /var/lib/atomhost inside,
# where atomhostd (D-Bus activated) and the boot units find it.
mount -t tmpfs -o mode=0755,size=4g atomhost-testhost "$D"
node "$HERE/../../dist/sandbox/host-disk.js" "$D/disk" /var/lib/atomhost >/dev/null || { echo "testhost: cannot make the host's sysroot" >&2; exit 1; }
echo "$D/disk /var/lib/atomhost" > "$D/binds"
echo "ATOMHOST_SYSROOT=/var/lib/atomhost/sysroot" > "$D/atomhostd.env"
printf 'atomhost-reconcile.service\natomhost-health.service\n' > "$D/enable"
PID="$(bash "$HERE/boot.sh" "$D")" || exit 1
echo "testhost: systemd is PID $PID on the machine; $(nsenter -t "$PID" -m -p -u -i systemctl is-system-running 2>/dev/null)" >&2
if [ $# -eq 0 ]; then set -- sh -c 'systemctl is-system-running; atomhost status'; fi
nsenter -t "$PID" -m -p -u -i env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="${TERM:-dumb}" "$@"
rc=$?
echo "testhost: exit code $rc" >&2
exit $rc
