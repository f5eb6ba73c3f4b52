#!/usr/bin/env node
// atomhostd: owns the sysroot and serves io.atomhost.Agent1 on the system bus.
// The sysroot is / on a booted host; ATOMHOST_SYSROOT names another (test hosts).
import dbus from 'dbus-next';
import { LocalHost } from '../core/local-host.js';
import { AgentService } from './service.js';

async function main(): Promise<void> {
  const sysroot = process.env.ATOMHOST_SYSROOT || '/';
  const host = await LocalHost.open(sysroot);
  LocalHost.portFactory = async (h) => {
    const [{ SystemContainers }, { connectSystemd }] = await Promise.all([import('../containers/lifecycle.js'), import('../systemd/client.js')]);
    return new SystemContainers(h, { units: await connectSystemd() });
  };
  const bus = dbus.systemBus();
  const service = new AgentService(bus, host);
  await service.start();
  const stop = () => {
    bus.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`atomhostd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
