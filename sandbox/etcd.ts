// Real etcd for tests and benchmarks: one member or a 3-member cluster on 127.0.0.1 ports of
// its own, data on tmpfs (/dev/shm: etcd fsyncs every write, which on the shared disk would
// make the tests measure the disk), everything stopped and removed by stop(). With `tls`, the
// client URLs are https:// (optionally requiring client certificates); peers stay on http.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { freePort } from './registry.js';

/** PEM file paths for etcd's --trusted-ca-file, --cert-file and --key-file. */
export interface EtcdTlsFiles {
  /** the CA of `cert` (the health check trusts it) and, with clientCertAuth, of the clients */
  ca: string;
  /**
   * The members' certificate (subjectAltName IP:127.0.0.1). With clientCertAuth it needs
   * extendedKeyUsage clientAuth as well as serverAuth: etcd's JSON gateway connects to the
   * member's own gRPC server with it, and the health check here presents it too (unless
   * clientCert/clientKey are given).
   */
  cert: string;
  key: string;
  /** the client certificate the health check presents under clientCertAuth (default: cert/key) */
  clientCert?: string;
  clientKey?: string;
  /** --client-cert-auth: refuse clients without a certificate signed by `ca` */
  clientCertAuth?: boolean;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  process: ChildProcess;
  alive: boolean;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** client URLs of every member, in order (https:// with tls) */
  clientUrls: string[];
  tls: EtcdTlsFiles | undefined;
  dir: string;
  /** SIGKILLs one member (a crash, not a graceful leave) */
  kill(index: number): Promise<void>;
  stop(): Promise<void>;
  /** the tail of each member's log, for a failing test's message */
  logs(): string;
}

/** Every cluster started and not yet stopped, so a crashing test run still cleans up. */
const live = new Set<EtcdCluster>();
process.once('exit', () => {
  for (const c of live) for (const m of c.members) if (m.alive) m.process.kill('SIGKILL');
});

export async function startEtcd(size: 1 | 3 = 1, opts: { readyTimeoutMs?: number; tls?: EtcdTlsFiles } = {}): Promise<EtcdCluster> {
  const tls = opts.tls;
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'atomhost-etcd-'));
  const token = `atomhost-${process.pid}-${Date.now()}`;
  const specs: { name: string; client: number; peer: number }[] = [];
  // Six distinct ports: freePort() may hand out a port it just handed out (it is free again).
  const ports = new Set<number>();
  while (ports.size < size * 2) ports.add(await freePort());
  const p = [...ports];
  for (let i = 0; i < size; i++) specs.push({ name: `m${i}`, client: p[2 * i]!, peer: p[2 * i + 1]! });
  const initial = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const members: EtcdMember[] = specs.map((s) => {
    const log = openSync(join(dir, `${s.name}.log`), 'w');
    const clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${s.client}`;
    const peerUrl = `http://127.0.0.1:${s.peer}`;
    const child = spawn(
      'etcd',
      [
        '--name', s.name,
        '--data-dir', join(dir, s.name),
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', initial,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', token,
        '--logger', 'zap',
        '--log-level', 'warn',
        // etcd checks client certificates whenever it has --trusted-ca-file: only with clientCertAuth.
        ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, ...(tls.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', tls.ca] : [])] : []),
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const m: EtcdMember = { name: s.name, clientUrl, peerUrl, process: child, alive: true };
    child.once('exit', () => (m.alive = false));
    return m;
  });
  const cluster: EtcdCluster = {
    members,
    clientUrls: members.map((m) => m.clientUrl),
    tls,
    dir,
    async kill(i) {
      const m = members[i]!;
      if (!m.alive) return;
      const gone = new Promise((r) => m.process.once('exit', r));
      m.process.kill('SIGKILL');
      await gone;
    },
    async stop() {
      await Promise.all(members.map((_, i) => cluster.kill(i)));
      rmSync(dir, { recursive: true, force: true });
      live.delete(cluster);
    },
    logs() {
      return members.map((m) => `--- ${m.name}\n${readTail(join(dir, `${m.name}.log`))}`).join('\n');
    },
  };
  live.add(cluster);
  try {
    await waitHealthy(cluster, opts.readyTimeoutMs ?? 20_000);
  } catch (err) {
    const logs = cluster.logs();
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}

async function waitHealthy(c: EtcdCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const t = c.tls;
  const tls = t ? { ca: readFileSync(t.ca), cert: readFileSync(t.clientCert ?? t.cert), key: readFileSync(t.clientKey ?? t.key) } : {};
  const agent = new Agent({ connect: { timeout: 1000, ...tls } });
  try {
    for (;;) {
      const dead = c.members.find((m) => !m.alive);
      if (dead) throw new Error(`etcd member ${dead.name} exited during start-up`);
      const ok = await Promise.all(
        c.members.map((m) =>
          request(`${m.clientUrl}/health`, { dispatcher: agent, headersTimeout: 1000, bodyTimeout: 1000 })
            .then(async (r) => {
              const text = await r.body.text(); // read whole, so the connection is free again
              return r.statusCode === 200 && (JSON.parse(text) as { health?: string }).health === 'true';
            })
            .catch(() => false),
        ),
      );
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy within ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    await agent.close();
  }
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}
