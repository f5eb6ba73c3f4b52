// What the FleetLock tests share: a real etcd (skipped with the reason when the binary is
// missing), an in-process lock server on a port of its own, and raw HTTP requests.
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../sandbox/registry.js';
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

/** `atomhost fleetlock serve` as a process of its own (the CLI as a user runs it). */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** its output lines so far, for a failing test's message */
  out: string[];
}

/** Starts `atomhost fleetlock serve --listen 127.0.0.1:PORT ARGS…`; resolves once a stdout line matches `until`. */
export async function serveProcess(args: string[], until: RegExp = /listening on/): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/cli/main.js', 'fleetlock', 'serve', '--listen', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${until} in 15 s:\n${out.join('\n')}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        out.push(l);
        if (until.test(l)) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleetlock serve exited ${code}: ${out.join('\n')}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child, out };
}

export async function stopServeProcess(p: ServeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  await exited;
}
