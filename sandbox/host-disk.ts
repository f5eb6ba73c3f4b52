// A host's disk for a test host: a sysroot whose first deployment (and first revision)
// atomhost made, in a directory of the machine that the test host binds at a path of its
// own. Used by the demo, `npm run testhost`, the stack tests and the health bench.
//   node dist/sandbox/host-disk.js DIR INSIDE   builds DIR/repo (an OS 1.0) and DIR/sysroot,
//                                                the remote pointing at INSIDE/repo
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from './os-tree.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * Makes DIR/sysroot with OS `osname` deployed from `repoUrl` (reachable from here); the
 * remote is then pointed at `insideUrl` when the test host sees the repo elsewhere.
 */
export async function makeHostDisk(dir: string, opts: { osname: string; ref: string; repoUrl: string; insideUrl?: string; remote?: string }): Promise<string> {
  const sysroot = join(dir, 'sysroot');
  const remote = opts.remote ?? 'origin';
  const repo = `--repo=${sysroot}/ostree/repo`;
  await mkdir(sysroot, { recursive: true });
  await execa('ostree', ['admin', 'init-fs', sysroot]);
  await execa('ostree', ['admin', 'os-init', `--sysroot=${sysroot}`, opts.osname]);
  await execa('ostree', ['remote', 'add', '--no-gpg-verify', repo, remote, opts.repoUrl]);
  await execa(process.execPath, [CLI, '--sysroot', sysroot, 'rebase', `${remote}:${opts.ref}`, '--os', opts.osname]);
  if (opts.insideUrl && opts.insideUrl !== opts.repoUrl) {
    await execa('ostree', ['remote', 'delete', repo, remote]);
    await execa('ostree', ['remote', 'add', '--no-gpg-verify', repo, remote, opts.insideUrl]);
  }
  return sysroot;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, inside] = process.argv.slice(2);
  if (!dir || !inside) {
    process.stderr.write('usage: host-disk.js DIR INSIDE\n');
    process.exit(2);
  }
  const repo = join(dir, 'repo');
  await initArchiveRepo(repo);
  await buildOsTree(join(dir, 'tree'), { osname: 'testhost-os', version: '1.0' });
  await commitTree(repo, 'testhost-os/x86_64/stable', join(dir, 'tree'), '1.0');
  await makeHostDisk(dir, { osname: 'testhost-os', ref: 'testhost-os/x86_64/stable', repoUrl: `file://${repo}`, insideUrl: `file://${inside}/repo` });
}
