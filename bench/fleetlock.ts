// The FleetLock server under a fleet: 1000 simulated nodes (the real FleetLockClient) in 10
// groups of 100 with 5 slots each, against `atomhost fleetlock serve` on a 3-member etcd,
// one member SIGKILLed a third of the way through (BENCH_FLEET_KILL=follower (default), leader or none). Reported: p50/p99 latency of pre-reboot
// and steady-state (baseline: one raw etcd transaction through the same JSON gateway), the
// most holders any group had at any etcd revision (from etcd's own history; must be ≤ slots),
// and the nodes that never got or never gave back their slot (must be 0).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd } from '../sandbox/etcd.js';
import { freePort } from '../sandbox/registry.js';
import { FleetLockClient } from '../fleet/client.js';
import { EtcdClient, prefixEnd } from '../fleet/etcd.js';
import { KEY_ROOT } from '../fleet/semaphore.js';
import { compare, type BenchResult } from './report.js';

const NODES = Number(process.env.BENCH_FLEET_NODES ?? 1000);
/** which etcd member dies a third of the way through: the raft leader, a follower, or none */
const KILL = process.env.BENCH_FLEET_KILL ?? 'follower';
const GROUPS = 10;
const SLOTS = 5;

/** CPU seconds (user + system) a process has used so far, from /proc (0 once it is gone). */
const cpuSeconds = (pid: number | undefined) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
};

/** The index of the member that is the raft leader (each member's status names the leader's id). */
async function leaderIndex(urls: string[]): Promise<number> {
  const st = await Promise.all(urls.map((u) => fetch(`${u}/v3/maintenance/status`, { method: 'POST', body: '{}' }).then((r) => r.json() as Promise<{ leader: string; header: { member_id: string } }>)));
  return Math.max(0, st.findIndex((s) => s.leader === s.header.member_id));
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

export async function benchFleetlock(): Promise<BenchResult> {
  const etcd = await startEtcd(3);
  const port = await freePort();
  const server = spawn(process.execPath, ['dist/cli/main.js', 'fleetlock', 'serve', '--listen', `127.0.0.1:${port}`, '--etcd', etcd.clientUrls.join(','), '--slots', String(SLOTS), '--lock-ttl', '5m'], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (await fetch(`${url}/metrics`).then((r) => r.ok, () => false)) break;
      if (i > 100) throw new Error('fleetlock serve did not start');
      await sleep(100);
    }
    // Baseline: one raw compare-and-put transaction through etcd's gateway.
    const raw = new EtcdClient(etcd.clientUrls);
    const rawMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await raw.txn([{ key: '/bench/raw', target: 'VERSION', result: 'GREATER', operand: -1 }], [{ put: { key: '/bench/raw', value: String(i) } }]);
      rawMs.push(performance.now() - t0);
    }
    const start = (await raw.range('/bench/raw')).revision;

    const lockMs: number[] = [];
    const releaseMs: number[] = [];
    let done = 0;
    let killed = false;
    let victim = -1;
    let errors = 0;
    const node = async (i: number) => {
      const c = new FleetLockClient({ baseUrl: url, id: `node-${i}`, group: `g${i % GROUPS}`, timeoutMs: 20_000 });
      await sleep(Math.random() * 1000); // nodes do not all wake up in the same millisecond
      for (;;) {
        const t0 = performance.now();
        let granted = false;
        try {
          granted = await c.preReboot();
        } catch {
          errors++;
        }
        lockMs.push(performance.now() - t0);
        if (granted) break;
        // A node told 'no slot' asks again later (Zincati waits minutes; about a second here).
        await sleep(500 + Math.random() * 1000);
      }
      await sleep(20); // "rebooting"
      for (;;) {
        const t0 = performance.now();
        try {
          await c.steadyState();
          releaseMs.push(performance.now() - t0);
          break;
        } catch {
          errors++;
          await sleep(50);
        }
      }
      if (++done === Math.floor(NODES / 3) && !killed && KILL !== 'none') {
        killed = true;
        void leaderIndex(etcd.clientUrls).then((leader) => {
          victim = KILL === 'leader' ? leader : (leader + 1) % 3;
          return etcd.kill(victim);
        });
      }
    };
    const t0 = Date.now();
    const cpu0 = { server: cpuSeconds(server.pid), etcd: etcd.members.map((m) => cpuSeconds(m.process.pid)), bench: process.cpuUsage() };
    await Promise.all(Array.from({ length: NODES }, (_, i) => node(i)));
    const wallS = (Date.now() - t0) / 1000;
    // Where the machine's CPU went during the run (the killed member counts until it died: not at all).
    const serverCpu = cpuSeconds(server.pid) - cpu0.server;
    const etcdCpu = etcd.members.reduce((sum, m, i) => sum + Math.max(0, cpuSeconds(m.process.pid) - cpu0.etcd[i]!), 0);
    const b = process.cpuUsage(cpu0.bench);
    const benchCpu = (b.user + b.system) / 1e6;
    const requests = lockMs.length + releaseMs.length;

    // Most holders per group at every revision since the start, from etcd's history.
    const live = new EtcdClient(etcd.clientUrls.filter((_, i) => i !== victim));
    const { revision: end } = await live.range(KEY_ROOT, prefixEnd(KEY_ROOT));
    let maxHolders = 0;
    for (let rev = start; rev <= end; rev++) {
      const { kvs } = await live.range(KEY_ROOT, prefixEnd(KEY_ROOT), rev);
      const per = new Map<string, number>();
      for (const kv of kvs) if (kv.key.includes('/holders/')) per.set(kv.key.split('/')[4]!, (per.get(kv.key.split('/')[4]!) ?? 0) + 1);
      for (const n of per.values()) maxHolders = Math.max(maxHolders, n);
    }
    const leftover = (await live.range(KEY_ROOT, prefixEnd(KEY_ROOT))).kvs.filter((k) => k.key.includes('/holders/')).length;
    const rawP50 = pct(rawMs, 50);
    return {
      name: `fleetlock: ${NODES} nodes, ${GROUPS} groups × ${SLOTS} slots, 3-member etcd, ${KILL === 'none' ? 'no member killed' : `the ${KILL} member killed mid-run`}`,
      rows: [
        compare('pre-reboot p50', 'ms', pct(lockMs, 50), 'raw etcd txn p50', rawP50),
        compare('pre-reboot p99', 'ms', pct(lockMs, 99), 'raw etcd txn p50', rawP50, '≤ 50 ms'),
        compare('steady-state p50', 'ms', pct(releaseMs, 50), 'raw etcd txn p50', rawP50),
        compare('steady-state p99', 'ms', pct(releaseMs, 99), 'raw etcd txn p50', rawP50, '≤ 50 ms'),
        { label: 'most holders of one group at any revision', value: maxHolders, unit: `(slots ${SLOTS})`, goal: `≤ ${SLOTS}` },
        { label: 'locks never released (lost)', value: leftover, unit: 'locks', goal: '0' },
        { label: 'requests that failed (retried)', value: errors, unit: 'requests' },
        { label: 'pre-reboot requests in all', value: lockMs.length, unit: 'requests' },
        { label: 'wall time', value: wallS, unit: 's' },
        { label: 'CPU of fleetlock serve per request', value: (serverCpu * 1000) / requests, unit: 'ms' },
        { label: 'CPU of the etcd members per request', value: (etcdCpu * 1000) / requests, unit: 'ms' },
        { label: 'CPU of the simulated nodes per request', value: (benchCpu * 1000) / requests, unit: 'ms' },
      ],
      notes: [`etcd revisions scanned: ${end - start + 1}`, `load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`],
    };
  } finally {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
    await etcd.stop();
  }
}
