#!/usr/bin/env bash
# Powers a test host off (bounded wait), kills its PID 1 if it is still there, and
# removes its directory: shutdown.sh DIR. With --keep, DIR stays (boot.sh DIR boots the
# same host again: a reboot).
set -uo pipefail
KEEP=0
[ "${1:-}" = "--keep" ] && { KEEP=1; shift; }
D="${1:?usage: shutdown.sh [--keep] DIR}"
PID="$(cat "$D/pid" 2>/dev/null || true)"
UNSHARE="$(cat "$D/unshare.pid" 2>/dev/null || true)"
if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
  timeout 5 nsenter -t "$PID" -m -p -u -i systemctl poweroff --no-block >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$PID" 2>/dev/null; then
    echo "shutdown.sh: the host did not power off within 15 s; killing its PID 1" >&2
    kill -KILL "$PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  fi
fi
[ -n "$UNSHARE" ] && { kill -KILL "$UNSHARE" 2>/dev/null || true; }
if [ "$KEEP" = 1 ]; then
  for _ in $(seq 1 40); do kill -0 "$UNSHARE" 2>/dev/null || break; sleep 0.1; done
  rm -f "$D/pid" "$D/unshare.pid"
  exit 0
fi
if mountpoint -q "$D"; then
  umount "$D" 2>/dev/null || umount -l "$D"
fi
rm -rf "$D"
