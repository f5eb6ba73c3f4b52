// Runs every compiled test file (dist/**/*.test.js) with Node's test runner, one file
// at a time: test files boot hosts, mount tmpfs and start servers of their own.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const filter = process.argv[2];
const files = find('dist/test').filter((f) => !filter || f.includes(filter)).sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
