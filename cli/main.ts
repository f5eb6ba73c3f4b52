#!/usr/bin/env node
// atomhost: the CLI's entry. It imports nothing before it knows the command, so that
// `atomhost --version` costs little more than Node's own start-up; the commands are in
// program.ts, and each loads its heavy parts (libostree, YAML, registry code) when run.

const VERSION = '0.1.0';
// `atomhost --version` (first) prints the version; Commander's .version() would also take a
// --version given after a command, which `kickstart validate --version F40` needs for itself.
if (process.argv[2] === '--version' || process.argv[2] === '-V') {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

// A plain `atomhost status` (status-fast.ts says which argv are) runs without commander.
const plain = process.argv.includes('status') && (await (await import('./status-fast.js')).runPlainStatus(process.argv.slice(2)));
if (!plain) await import('./program.js');
