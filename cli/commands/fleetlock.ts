// atomhost fleetlock serve|status: the FleetLock server on etcd and a view of its holders
// (see docs/fleet.md). Loaded only when used: nothing here touches the host or atomhostd.
import type { Command } from 'commander';
import { action, printJson, type CliContext, type Registrar } from '../context.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface EtcdOptions {
  etcd: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
}

/** --etcd and its TLS flags, the same on serve and status (etcdctl's --cacert/--cert/--key). */
const etcdOptions = (c: Command, etcdHelp: string) =>
  c
    .requiredOption('--etcd <urls>', etcdHelp)
    .option('--etcd-cacert <file>', 'verify https:// etcd members with this PEM CA (default: the system CAs)')
    .option('--etcd-cert <file>', 'present this PEM client certificate to etcd (for members with --client-cert-auth)')
    .option('--etcd-key <file>', 'the PEM private key of --etcd-cert');

export const registerFleetlock: Registrar = (program: Command, ctx: CliContext) => {
  const fl = program.command('fleetlock').description('a FleetLock reboot-lock server for a fleet of nodes, its state in etcd');

  const serve = fl
    .command('serve')
    .description('serve the FleetLock protocol (POST /v1/pre-reboot, /v1/steady-state; GET /metrics)')
    .requiredOption('--listen <host:port>', 'address to listen on, e.g. 0.0.0.0:3333');
  etcdOptions(serve, 'etcd client URLs, comma-separated, all http:// or all https:// (each is tried in turn)')
    .requiredOption('--slots <n>', 'reboot slots of every group (nodes allowed to reboot at once)')
    .option('--group <name=n>', 'slots of one group (repeatable)', collect)
    .option('--lock-ttl <duration>', 'lease of a held lock; a node renews it by asking again (e.g. 90s, 30m, 1h)', '1h')
    .option('--token-file <path>', 'require "Authorization: Bearer <token>" with the token in this file')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--client-ca <file>', 'mTLS: refuse, at the handshake, clients without a certificate signed by this PEM CA')
    .action(
      action(ctx, async (o: EtcdOptions & { listen: string; slots: string; group?: string[]; lockTtl?: string; tokenFile?: string; tlsCert?: string; tlsKey?: string; clientCa?: string }) => {
        const { parseServeFlags } = await import('../../fleet/config.js');
        const { EtcdClient } = await import('../../fleet/etcd.js');
        const { createFleetLockServer } = await import('../../fleet/server.js');
        const { KEY_ROOT } = await import('../../fleet/semaphore.js');
        const s = parseServeFlags(o);
        const log = (l: string) => process.stdout.write(`${l}\n`);
        const etcd = new EtcdClient(s.etcd, { tls: s.etcdTls });
        const server = createFleetLockServer({ etcd, slots: s.slots, groups: s.groups, lockTtlSeconds: s.lockTtlSeconds, token: s.token, tls: s.tls, log });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(s.port, s.host, () => resolve());
        });
        const addr = server.address();
        const where = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
        const groups = [...s.groups].map(([g, n]) => ` ${g}=${n}`).join('');
        log(`fleetlock: listening on ${where}; etcd ${s.etcd.join(',')}; slots ${s.slots}${groups ? `; groups${groups}` : ''}; lock ttl ${s.lockTtlSeconds}s; auth ${[s.token ? 'bearer token' : '', s.tls?.clientCa ? 'client certificate' : ''].filter(Boolean).join(' + ') || 'none'}; ${s.tls ? 'https' : 'http'}`);
        // One read at start, so a wrong etcd URL or TLS file shows in the log now, not at the
        // first node's request; etcd being down at boot is no reason to stop serving.
        etcd.range(KEY_ROOT).then(
          () => log(`fleetlock: etcd answered${s.etcdTls ? ` over TLS${s.etcdTls.cert ? ' with a client certificate' : ''}` : ''}`),
          (err: unknown) => log(`fleetlock: etcd is not usable yet (every request answers 503 until it is): ${err instanceof Error ? err.message : String(err)}`),
        );
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`fleetlock: ${sig}, stopping`);
            void server.stop().then(resolve, resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
      }),
    );

  const status = fl.command('status').description('list the groups and the nodes holding a reboot slot, with their age and the lease left');
  etcdOptions(status, 'etcd client URLs, comma-separated, all http:// or all https://')
    .action(
      action(ctx, async (o: EtcdOptions) => {
        const { parseEtcdFlags } = await import('../../fleet/config.js');
        const { EtcdClient } = await import('../../fleet/etcd.js');
        const { Semaphore } = await import('../../fleet/semaphore.js');
        const { renderFleetStatus, fleetStatusJson } = await import('../../fleet/status.js');
        const e = parseEtcdFlags(o);
        const etcd = new EtcdClient(e.urls, { tls: e.tls });
        const groups = await new Semaphore(etcd).snapshot(true).finally(() => etcd.close());
        const now = Date.now();
        if (ctx.globals().json) printJson(fleetStatusJson(groups, now));
        else process.stdout.write(renderFleetStatus(groups, now));
      }),
    );
};
