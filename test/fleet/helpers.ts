// What the FleetLock tests share: a real etcd (skipped with the reason when the binary is
// missing), an in-process lock server on a port of its own, and raw HTTP requests.
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import { requireCommand } from '../helpers/capability.js';
import { startEtcd, type EtcdCluster } from '../../sandbox/etcd.js';
import { EtcdClient } from '../../fleet/etcd.js';
import { createFleetLockServer, type FleetLockServerOptions } from '../../fleet/server.js';
import { KEY_ROOT } from '../../fleet/semaphore.js';
import { prefixEnd } from '../../fleet/etcd.js';

export async function etcdOrSkip(t: TestContext, size: 1 | 3 = 1): Promise<EtcdCluster | undefined> {
  if (!(await requireCommand(t, 'etcd'))) return undefined;
  return startEtcd(size);
}

export interface RunningServer {
  url: string;
  lines: string[];
  close(): Promise<void>;
}

export async function startServer(etcdUrls: string[], opts: Partial<FleetLockServerOptions> = {}): Promise<RunningServer> {
  const lines: string[] = [];
  const server = createFleetLockServer({
    etcd: new EtcdClient(etcdUrls, { attemptTimeoutMs: 1500 }),
    slots: 1,
    lockTtlSeconds: 3600,
    log: (l) => lines.push(l),
    ...opts,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    lines,
    close: () => server.stop(),
  };
}

export interface RawAnswer {
  status: number;
  body: string;
  json: { kind?: string; value?: string } | undefined;
}

export async function post(url: string, body: string, headers: Record<string, string> = { 'fleet-lock-protocol': 'true' }): Promise<RawAnswer> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text) as RawAnswer['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, body: text, json };
}

export const lockBody = (id: string, group = 'default') => JSON.stringify({ client_params: { id, group } });

/** The holder ids of a group as etcd has them, read with a client of its own. */
export async function holdersInEtcd(etcdUrls: string[], group = 'default'): Promise<string[]> {
  const prefix = `${KEY_ROOT}${group}/holders/`;
  const { kvs } = await new EtcdClient(etcdUrls).range(prefix, prefixEnd(prefix));
  return kvs.map((k) => k.key.slice(prefix.length)).sort();
}
