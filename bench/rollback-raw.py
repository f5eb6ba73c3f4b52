# The raw-libostree baseline for a rollback: what `ostree admin` would do if its CLI had
# the verb (Debian's 2022.7 has none): load, lock, swap the first two deployments,
# write_deployments. Runs N times and prints each duration in seconds, one per line.
import sys, time
import gi
gi.require_version('OSTree', '1.0')
from gi.repository import OSTree, Gio

sysroot_path, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    t = time.perf_counter()
    s = OSTree.Sysroot.new(Gio.File.new_for_path(sysroot_path))
    s.load(None)
    s.lock()
    deps = s.get_deployments()
    order = [deps[1], deps[0]] + deps[2:]
    s.write_deployments(order, None)
    s.unlock()
    print(time.perf_counter() - t, flush=True)
