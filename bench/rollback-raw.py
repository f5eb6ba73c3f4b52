# The raw-libostree baseline for a rollback: what `ostree admin` would do if its CLI had
# the verb (Debian's 2022.7 has none): load, lock, swap the first two deployments,
# write_deployments. Runs N times and prints each duration in seconds, one per line.
# With N given as "-" it stays loaded and does one rollback per line read from stdin, so
# the bench can alternate its rounds with atomhost's (load then falls on both sides alike).
import sys, time
import gi
gi.require_version('OSTree', '1.0')
from gi.repository import OSTree, Gio

sysroot_path = sys.argv[1]
rounds = sys.stdin if sys.argv[2] == '-' else range(int(sys.argv[2]))
for _ in rounds:
    t = time.perf_counter()
    s = OSTree.Sysroot.new(Gio.File.new_for_path(sysroot_path))
    s.load(None)
    s.lock()
    deps = s.get_deployments()
    order = [deps[1], deps[0]] + deps[2:]
    s.write_deployments(order, None)
    s.unlock()
    print(time.perf_counter() - t, flush=True)
