// History that does not slow the host down: `atomhost revisions` (first page) and
// `atomhost status`, as processes with --sysroot, on a sysroot with 10 revision records
// against the same with 10,000 (goal ≤ 1.2×), measured alternately in one run. The first
// page is 20 records against all 10, so `--limit 10` shows the index's own cost.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory, type StaticServer } from '../sandbox/http-server.js';
import { makeScratch } from '../sandbox/scratch.js';
import { revisionId, RevisionStore, type Revision } from '../core/revision.js';
import { compare, median, type BenchResult } from './report.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
const OS = 'benchos';
const REF = 'benchos/x86_64/stable';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

/** Old history nothing names, as years of daily updates leave it (written as files: JSON is YAML). */
async function addHistory(sysroot: string, count: number): Promise<void> {
  const dir = new RevisionStore(sysroot).dir;
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const content = {
      os: { osname: OS, remote: 'origin', refspec: `origin:${REF}`, checksum: i.toString(16).padStart(64, '0'), version: `0.${i}`, kargs: [] },
      containers: {},
      units: {},
      parent: null,
    };
    const rev: Revision = { id: revisionId(content), ...content, created: new Date(Date.UTC(2000, 0, 1) + i * 86_400_000).toISOString(), state: 'rolled-back' };
    await writeFile(join(dir, `${rev.id}.yaml`), JSON.stringify(rev), { mode: 0o600 });
  }
}

async function timed(args: string[]): Promise<number> {
  const t = process.hrtime.bigint();
  await execa(process.execPath, [CLI, ...args]);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function benchHistory(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-history-', 1024);
  let served: StaticServer | null = null;
  try {
    const repo = join(scratch.dir, 'repo');
    await initArchiveRepo(repo);
    await buildOsTree(join(scratch.dir, 'tree'), { osname: OS, version: '1.0' });
    await commitTree(repo, REF, join(scratch.dir, 'tree'), '1.0');
    served = await serveDirectory(repo);
    const sysroots = { small: join(scratch.dir, 'sr-10'), large: join(scratch.dir, 'sr-10000') };
    for (const [size, sr] of Object.entries(sysroots)) {
      await mkdir(sr);
      await execa('ostree', ['admin', 'init-fs', sr]);
      await execa('ostree', ['admin', 'os-init', `--sysroot=${sr}`, OS]);
      await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${sr}/ostree/repo`, 'origin', served.url]);
      await execa(process.execPath, [CLI, '--sysroot', sr, 'rebase', `origin:${REF}`, '--os', OS]);
      await addHistory(sr, size === 'small' ? 9 : 9_999);
    }
    // The first listing after records appeared behind the index's back rebuilds it (once).
    const rebuild = await timed(['--sysroot', sysroots.large, 'revisions']);
    await timed(['--sysroot', sysroots.small, 'revisions']);
    const t = { revisions: { small: [] as number[], large: [] as number[] }, ten: { small: [] as number[], large: [] as number[] }, status: { small: [] as number[], large: [] as number[] } };
    for (let i = 0; i < ROUNDS; i++) {
      const order = i % 2 ? (['large', 'small'] as const) : (['small', 'large'] as const);
      for (const size of order) {
        t.revisions[size].push(await timed(['--sysroot', sysroots[size], 'revisions']));
        // The same ten records shown on both sides: what the index itself costs.
        t.ten[size].push(await timed(['--sysroot', sysroots[size], 'revisions', '--limit', '10']));
        t.status[size].push(await timed(['--sysroot', sysroots[size], 'status']));
      }
    }
    return {
      name: 'history (10 vs 10,000 revision records)',
      rows: [
        compare('atomhost revisions, 10,000 records', 's', median(t.revisions.large), 'the same with 10', median(t.revisions.small), '≤ 1.2×'),
        compare('atomhost revisions --limit 10, 10,000 records', 's', median(t.ten.large), 'the same with 10', median(t.ten.small)),
        compare('atomhost status, 10,000 records', 's', median(t.status.large), 'the same with 10', median(t.status.small), '≤ 1.2×'),
      ],
      notes: [`medians of ${ROUNDS}; the one listing that rebuilt the index from 10,000 records took ${(rebuild * 1000).toFixed(0)} ms`],
    };
  } finally {
    await served?.close();
    await scratch.dispose();
  }
}
