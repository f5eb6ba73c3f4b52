// The in-process host of `--sysroot` (and of the container verbs on the running host),
// loaded only by the commands that open one: it brings libostree, YAML and the revision store.
import type { LocalHost } from '../core/local-host.js';

export async function openLocalHost(sysroot: string): Promise<LocalHost> {
  const { LocalHost } = await import('../core/local-host.js');
  // Whole-stack upgrades need the system-container machinery; load it only then.
  LocalHost.portFactory ??= async (host) => {
    const { SystemContainers } = await import('../containers/lifecycle.js');
    return new SystemContainers(host, { units: null });
  };
  return LocalHost.open(sysroot);
}
