// The health gate's fallback and the boot-time reconcile, in a test host (real systemd,
// atomhostd, runc, a local registry), side by side with the raw systemd operation each one
// cannot do without: from "health check failed" to "stack running the previous revision"
// for a container-only change (goal < 1 s) against `systemctl restart` of the unit, and
// `atomhostd --reconcile` at boot against `systemctl daemon-reload`.
import { join } from 'node:path';
import { TestHost } from '../sandbox/testhost/testhost.js';
import { buildAndPush, freePort, startRegistry } from '../sandbox/registry.js';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { makeScratch } from '../sandbox/scratch.js';
import { makeHostDisk } from '../sandbox/host-disk.js';
import { compare, median, type BenchResult } from './report.js';

const AUTO_ROLLBACK = 'c17c8d9e0f1a4b3c8d4e5f6071829304';

export async function benchHealth(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-health-', 3072);
  const reg = await startRegistry(join(scratch.dir, 'registry'));
  let th: TestHost | null = null;
  try {
    const repo = join(scratch.dir, 'repo');
    await initArchiveRepo(repo);
    await buildOsTree(join(scratch.dir, 'tree'), { osname: 'benchos', version: '1.0' });
    await commitTree(repo, 'benchos/stable', join(scratch.dir, 'tree'), '1.0');
    const disk = join(scratch.dir, 'disk');
    await makeHostDisk(disk, { osname: 'benchos', ref: 'benchos/stable', repoUrl: `file://${repo}` });
    const port = await freePort();
    const good = { layers: [{ busybox: true, files: { 'www/index.html': 'ok\n' } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] };
    const bad = { layers: [{ busybox: true }], cmd: ['/bin/sh', '-c', 'sleep 1; echo broken >&2; exit 1'] };
    await buildAndPush(reg.host, 'kubelet:stable', good);
    th = await TestHost.boot({
      binds: [[disk, '/var/lib/atomhost-bench']],
      enable: ['atomhost-reconcile.service', 'atomhost-health.service'],
      agentEnv: { ATOMHOST_SYSROOT: '/var/lib/atomhost-bench/sysroot', ATOMHOST_INSECURE_REGISTRIES: reg.host, ATOMHOST_HEALTH_DEADLINE_MS: '20000' },
    });
    const host = th;
    const ok = async (args: string[]) => {
      const r = await host.exec('atomhost', args);
      if (r.exitCode !== 0) throw new Error(`atomhost ${args.join(' ')}: ${r.stderr}`);
    };
    await ok(['container', 'install', '--role', 'kubelet', '--probe-http', `http://127.0.0.1:${port}/index.html`, `${reg.host}/kubelet:stable`]);

    const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
    const restart: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await buildAndPush(reg.host, 'kubelet:stable', { ...bad, cmd: ['/bin/sh', '-c', `sleep 1; echo broken ${i} >&2; exit 1`] });
      const r = await host.exec('atomhost', ['container', 'update', 'kubelet']);
      if (r.exitCode !== 1) throw new Error(`the broken update was not refused: ${r.stdout}${r.stderr}`);
      const t = await host.sh('a=$(date +%s%N); systemctl restart kubelet.service; b=$(date +%s%N); echo $(( (b - a) / 1000 ))');
      restart.push(Number(t.stdout.trim()) / 1e6);
    }
    const entries = (await host.exec('journalctl', [`MESSAGE_ID=${AUTO_ROLLBACK}`, '-o', 'json', '--no-pager'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const fallback = entries.map((e) => Number(e.ATOMHOST_FALLBACK_MS) / 1000).filter((x) => Number.isFinite(x));

    // A reboot: the reconcile unit applies the revision before the stack starts.
    th = await host.reboot();
    const show = async (unit: string) => {
      const out = (await th!.exec('systemctl', ['show', unit, '-p', 'ExecMainStartTimestampMonotonic', '-p', 'ExecMainExitTimestampMonotonic'])).stdout;
      const v = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
      return (Number(v.ExecMainExitTimestampMonotonic) - Number(v.ExecMainStartTimestampMonotonic)) / 1e6;
    };
    const reconcile = await show('atomhost-reconcile.service');
    const reload = await th.sh('a=$(date +%s%N); systemctl daemon-reload; b=$(date +%s%N); echo $(( (b - a) / 1000 ))');
    return {
      name: 'health gate fallback and boot-time reconcile (test host, real systemd and runc)',
      rows: [
        compare('check failed → previous revision running', 's', median(fallback), 'systemctl restart of the unit', median(restart), '< 1 s'),
        compare('atomhostd --reconcile at boot (1 container)', 's', reconcile, 'systemctl daemon-reload', Number(reload.stdout.trim()) / 1e6),
      ],
      notes: [`${fallback.length} automatic rollbacks, median; the fallback includes marking the revision failed, one boot-order write and the live re-apply`],
    };
  } finally {
    await th?.shutdown();
    await reg.stop();
    await scratch.dispose();
  }
}
