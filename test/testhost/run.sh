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
PID="$(bash "$HERE/boot.sh" "$D")" || exit 1
echo "testhost: systemd is PID $PID on the machine; $(nsenter -t "$PID" -m -p -u -i systemctl is-system-running 2>/dev/null)" >&2
if [ $# -eq 0 ]; then set -- sh -c 'systemctl is-system-running; atomhost status'; fi
nsenter -t "$PID" -m -p -u -i env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="${TERM:-dumb}" "$@"
rc=$?
echo "testhost: exit code $rc" >&2
exit $rc
