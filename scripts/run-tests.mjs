// Runs every compiled test file (dist/**/*.test.js) with Node's test runner. Files run one
// at a time (they boot hosts, mount tmpfs and start servers of their own), except the
// longest VM file, which runs alongside the rest: its guest mostly waits on qemu (one
// core), and the suite then fits in about half an hour on a 2-core machine.
// Its output is printed when it ends. ATOMHOST_TEST_SERIAL=1 runs everything in one line.
//   node scripts/run-tests.mjs [SUBSTRING]
import { readdirSync, statSync, createWriteStream, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';

/** Run beside the others (the VM scenarios with the most reboots). */
const SIDE = ['vm/host.test.js'];

function find(dir) {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const filter = process.argv[2];
const files = find('dist/test').filter((f) => !filter || f.includes(filter)).sort();
const serial = process.env.ATOMHOST_TEST_SERIAL === '1';
const side = serial ? [] : files.filter((f) => SIDE.some((s) => f.endsWith(s)));
const main = files.filter((f) => !side.includes(f));

function runner(list, out) {
  if (!list.length) return Promise.resolve(0);
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...list], { stdio: ['ignore', out ?? 'inherit', out ?? 'inherit'] });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let logDir = null;
let sideRun = Promise.resolve(0);
if (side.length) {
  logDir = mkdtempSync(join(tmpdir(), 'atomhost-tests-'));
  const log = join(logDir, 'side.log');
  const stream = createWriteStream(log);
  await new Promise((r) => stream.once('open', r));
  process.stdout.write(`# running ${side.join(' ')} alongside the other files; its report follows theirs\n`);
  sideRun = runner(side, stream).then((code) => {
    stream.end();
    return code;
  });
}
const mainCode = await runner(main);
const sideCode = await sideRun;
if (logDir) {
  process.stdout.write(`\n# ${side.join(' ')}\n${readFileSync(join(logDir, 'side.log'), 'utf8')}`);
  rmSync(logDir, { recursive: true, force: true });
}
process.exit(mainCode || sideCode);
