#!/usr/bin/env node
// atomhostd: owns the sysroot and serves io.atomhost.Agent1 on the system bus.
// The sysroot is / on a booted host; ATOMHOST_SYSROOT names another (test hosts).
//   atomhostd              the daemon (D-Bus activated, atomhostd.service)
//   atomhostd --reconcile  once, early at boot (atomhost-reconcile.service, before the
//                          stack's units): the containers and units of the booted revision
//   atomhostd --gate       once, after the stack started (atomhost-health.service): the
//                          health gate; a failed revision falls back (live or by reboot)
//   atomhostd --metrics-listen HOST:PORT [--metrics-allow-remote]
//                          also serve Prometheus metrics on HTTP (docs/metrics.md); they are
//                          always on /run/atomhost/metrics.sock (root only)
import dbus from 'dbus-next';
import { LocalHost } from '../core/local-host.js';
import type { TxContext } from '../core/host-api.js';
import { AgentService } from './service.js';
import { log } from './journal.js';
import { recordBootStep } from './boot-record.js';
import type { MetricsListen } from './metrics.js';

async function openStack(host: LocalHost) {
  const [{ StackSupervisor }, { connectSystemd }] = await Promise.all([import('../containers/supervisor.js'), import('../systemd/client.js')]);
  const units = await connectSystemd();
  // The registry client and image store load on the first container change, not at start.
  const containers = async (tx: TxContext) => new (await import('../containers/lifecycle.js')).SystemContainers(host, { units, progress: tx.progress, signal: tx.signal });
  LocalHost.portFactory = () => containers({});
  const supervisor = new StackSupervisor(host, () => containers({}), units, AgentService.logEvent);
  return { units, containers, supervisor };
}

async function reconcile(host: LocalHost): Promise<void> {
  const { units, supervisor } = await openStack(host);
  const out = await supervisor.reconcileAtBoot();
  await recordBootStep('reconcile', out.decision?.action ?? 'none');
  log(out.reboot ? 'err' : 'info', out.reboot ? 'autoRollback' : 'reconciled', out.message, { ATOMHOST_REVISION: out.revision ?? undefined, ATOMHOST_DECISION: out.decision?.action });
  process.stdout.write(`${out.message}\n`);
  if (out.reboot) await units.start('reboot.target');
  await units.close();
}

async function healthGate(host: LocalHost): Promise<void> {
  const { units, supervisor } = await openStack(host);
  try {
    const out = await supervisor.gateChange('boot', 'boot');
    await recordBootStep('gate', out.decision?.action ?? 'none');
    log('info', 'healthPassed', out.message, { ATOMHOST_REVISION: out.revision ?? undefined });
    process.stdout.write(`${out.message}\n`);
  } catch (err) {
    const d = (err as { details?: { reboot?: boolean; fallback?: string; revision?: string } }).details ?? {};
    await recordBootStep('gate', d.fallback ? 'fall-back' : d.revision ? 'give-up' : 'error');
    log('err', 'autoRollback', (err as Error).message, { PRIORITY: 3, ATOMHOST_FALLBACK: d.fallback, ATOMHOST_REASON: (err as Error).message.split('\n')[0] });
    process.stderr.write(`${(err as Error).message}\n`);
    if (d.reboot) await units.start('reboot.target');
    process.exitCode = 1;
  } finally {
    await units.close();
  }
}

async function daemon(host: LocalHost, metricsListen: MetricsListen | null): Promise<void> {
  const stack = await openStack(host).catch((err: unknown) => {
    log('warning', 'started', `no systemd on the system bus (${(err as Error).message}): the stack is not supervised`);
    return null;
  });
  const bus = dbus.systemBus();
  const service = new AgentService(bus, host, stack);
  const { AgentMetrics, serveMetrics } = await import('./metrics.js');
  const metrics = new AgentMetrics();
  service.attachMetrics(metrics);
  const { UpdateAgent } = await import('../core/updates/agent.js');
  const updates = new UpdateAgent({
    host,
    transaction: (title, fn) => service.runTransaction(title, fn),
    // Asked of systemd (a clean shutdown finalizes a staged deployment); never `reboot`.
    reboot: async () => {
      if (!stack) throw new Error('no systemd on the system bus: cannot ask for a reboot');
      await stack.units.queueStart('reboot.target');
    },
    // Loaded only when a policy says fleet_lock.
    lock: async (cfg) => (await import('../fleet/policy-lock.js')).policyLock(cfg),
    log: (level, id, message, fields) => log(level, id, message, fields),
    onChange: (report) => {
      metrics.updatesChanged(report);
      service.updatesChanged();
    },
  });
  service.attachUpdates(updates);
  await service.start();
  // After the bus name is ours: no other atomhostd serves the socket we replace.
  const closeMetrics = await serveMetrics(metrics, { listen: metricsListen, warn: (m) => log('err', 'started', m, { PRIORITY: 3 }) });
  updates.start();
  const stop = () => {
    updates.stop();
    closeMetrics();
    bus.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === '--reconcile' || mode === '--gate') {
    // The boot units share atomhostd.env: a bad metrics setting must not stop them.
    const host = await LocalHost.open(process.env.ATOMHOST_SYSROOT || '/');
    return mode === '--reconcile' ? reconcile(host) : healthGate(host);
  }
  // Checked before anything is opened: a bad value names its flag or variable.
  const { listen, rest } = (await import('./metrics.js')).metricsOptions(process.argv.slice(2));
  if (rest.length) throw new Error(`unknown option ${rest[0]} (atomhostd [--reconcile|--gate|--metrics-listen HOST:PORT [--metrics-allow-remote]])`);
  return daemon(await LocalHost.open(process.env.ATOMHOST_SYSROOT || '/'), listen);
}

main().catch((err: unknown) => {
  process.stderr.write(`atomhostd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
