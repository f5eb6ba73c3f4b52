// The README's first command: makes a sandbox host on the spot (a sysroot on its own
// tmpfs, a local OSTree repo with two versions served on 127.0.0.1) and runs atomhost
// on it, printing every command so that it can be repeated by hand.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from './os-tree.js';
import { serveDirectory } from './http-server.js';
import { unimmutable } from './scratch.js';
import { buildAndPush, freePort, startRegistry } from './registry.js';
import { makeHostDisk } from './host-disk.js';
import { MESSAGE_IDS } from '../agent/journal.js';

const SANDBOX = process.env.ATOMHOST_SANDBOX ?? '/tmp/atomhost-sandbox';
const OS = 'atomic-demo';
const REF = 'atomic-demo/x86_64/stable';
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
function say(text: string) {
  process.stdout.write(`\n${bold(`## ${text}`)}\n`);
}

async function run(args: string[], opts: { allowExit?: number[] } = {}) {
  process.stdout.write(`${bold('$')} atomhost ${args.join(' ')}\n`);
  const r = await execa(process.execPath, [cli, ...args], { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0 && !(opts.allowExit ?? []).includes(r.exitCode ?? -1)) throw new Error(`atomhost ${args.join(' ')} exited ${r.exitCode}`);
}

async function sh(cmd: string, args: string[], show = true) {
  if (show) process.stdout.write(`${bold('$')} ${cmd} ${args.join(' ')}\n`);
  const r = await execa(cmd, args, { stdio: show ? 'inherit' : 'pipe' });
  return r.stdout;
}

async function clean() {
  if (!existsSync(SANDBOX)) return;
  await unimmutable(SANDBOX);
  await execa('umount', ['-R', SANDBOX], { reject: false });
  await rm(SANDBOX, { recursive: true, force: true });
}

async function main() {
  if (process.argv.includes('clean')) {
    await clean();
    console.log(`removed ${SANDBOX}`);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('the sandbox host mounts a tmpfs and deploys into it: run the demo as root');
  await clean();
  await mkdir(SANDBOX, { recursive: true });
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=0755', 'atomhost-sandbox', SANDBOX]);
  const repo = join(SANDBOX, 'repo');
  const tree = join(SANDBOX, 'tree');
  const sysroot = join(SANDBOX, 'sysroot');

  say(`Making a sandbox host in ${SANDBOX} (its own tmpfs): an OS repo with version 1.0`);
  await initArchiveRepo(repo);
  await buildOsTree(tree, { osname: OS, version: '1.0' });
  await commitTree(repo, REF, tree, '1.0');
  const server = await serveDirectory(repo);
  try {
    console.log(`serving ${repo} at ${server.url}`);
    await mkdir(sysroot);
    await sh('ostree', ['admin', 'init-fs', sysroot]);
    await sh('ostree', ['admin', 'os-init', `--sysroot=${sysroot}`, OS]);
    await sh('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${sysroot}/ostree/repo`, 'demo', server.url]);

    say('Install the first version (the first deployment and the first host revision)');
    await run(['--sysroot', sysroot, 'rebase', `demo:${REF}`, '--os', OS]);
    await run(['--sysroot', sysroot, 'status']);

    say('The vendor publishes 2.0 (a changed file, a new one)');
    await buildOsTree(tree, { osname: OS, version: '2.0', files: { 'usr/share/atomic-demo/NEWS': 'Version 2.0: faster boots.\n' } });
    await commitTree(repo, REF, tree, '2.0');

    say('Is there an update? What would it change?');
    await run(['--sysroot', sysroot, 'upgrade', '--check']);
    await run(['--sysroot', sysroot, 'upgrade', '--preview']);

    say('Upgrade: pull and deploy 2.0 as a new revision');
    await run(['--sysroot', sysroot, 'upgrade']);
    await run(['--sysroot', sysroot, 'status']);

    say('Roll back: 1.0, with its whole revision, is the default again');
    await run(['--sysroot', sysroot, 'rollback']);
    await run(['--sysroot', sysroot, 'status']);
    await run(['--sysroot', sysroot, 'revisions']);

    say('The independent view: ostree itself and the bootloader entries');
    await sh('ostree', ['admin', 'status', `--sysroot=${sysroot}`]);
    await sh('sh', ['-c', `grep -H -E '^(title|options)' ${sysroot}/boot/loader/entries/*.conf`]);

    say('A local OCI registry with an etcd-like system container image (busybox httpd)');
    const registry = await startRegistry(join(SANDBOX, 'registry'));
    try {
      // Plain HTTP only for registries registries.conf names as insecure: a drop-in in the
      // sandbox's own /etc/containers (the machine's is left alone).
      const confDir = join(SANDBOX, 'containers');
      await mkdir(join(confDir, 'registries.conf.d'), { recursive: true });
      await writeFile(join(confDir, 'registries.conf.d', '50-demo.conf'), demoRegistryConf(registry.host));
      process.env.ATOMHOST_CONTAINERS_CONF_DIR = confDir;
      console.log(`export ATOMHOST_CONTAINERS_CONF_DIR=${confDir}`);
      await sh('cat', [join(confDir, 'registries.conf.d', '50-demo.conf')]);
      const port = await freePort();
      const image = (v: string) => ({ layers: [{ busybox: true }, { files: { 'www/index.html': `etcd-demo ${v}\n` } }], cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] });
      await buildAndPush(registry.host, 'etcd-demo:3.5', image('3.5'));

      say('Install it: pulled over the OCI API, stored in the OSTree repo, a new revision');
      await run(['--sysroot', sysroot, 'container', 'install', '--role', 'network', `${registry.host}/etcd-demo:3.5`]);
      await run(['container', 'resolve', `${registry.host}/etcd-demo:3.5`]);
      await run(['--sysroot', sysroot, 'container', 'list']);

      say('A whole-stack release: OS 2.1 and etcd 3.6 together, in one manifest');
      await buildOsTree(tree, { osname: OS, version: '2.1', files: { 'usr/share/atomic-demo/NEWS': 'Version 2.1.\n' } });
      await commitTree(repo, REF, tree, '2.1');
      await buildAndPush(registry.host, 'etcd-demo:3.6', image('3.6'));
      const manifest = join(SANDBOX, 'stack.yaml');
      await writeFile(manifest, `apiVersion: atomhost.io/v1alpha1\nkind: Stack\nmetadata: { name: demo-node, version: "2026.11" }\nos: { version: "2.1" }\ncontainers:\n  - { name: etcd-demo, image: "${registry.host}/etcd-demo:3.6", role: network }\n`);
      await sh('cat', [manifest]);
      await run(['--sysroot', sysroot, 'stack', 'follow', manifest]);
      await run(['--sysroot', sysroot, 'upgrade', '--preview']);
      await run(['--sysroot', sysroot, 'upgrade']);
      await run(['--sysroot', sysroot, 'status']);

      say('Roll back the whole stack: the OS and the container go back together');
      await run(['--sysroot', sysroot, 'rollback']);
      await run(['--sysroot', sysroot, 'container', 'list']);
      const revs = JSON.parse((await execa(process.execPath, [cli, '--sysroot', sysroot, '--json', 'revisions'])).stdout) as { id: string; os: { version: string } }[];
      const [a, b] = [revs.find((r) => r.os.version === '2.1')!, revs[revs.length - 1]];
      await run(['--sysroot', sysroot, 'diff', b.id.slice(0, 12), a.id.slice(0, 12)]);

      if (!process.argv.includes('--no-host')) await agentPart(repo, registry.host);
    } finally {
      await registry.stop();
    }
  } finally {
    await server.close();
  }
  // Leave the sandbox usable by hand without a server: the remote becomes a file:// URL.
  await execa('ostree', ['remote', 'delete', `--repo=${sysroot}/ostree/repo`, 'demo']);
  await execa('ostree', ['remote', 'add', '--no-gpg-verify', `--repo=${sysroot}/ostree/repo`, 'demo', `file://${repo}`]);
  await run(['--sysroot', sysroot, 'stack', 'unfollow']);
  await buildOsTree(tree, { osname: OS, version: '3.0', files: { 'usr/share/atomic-demo/NEWS': 'Version 3.0.\n' } });
  await commitTree(repo, REF, tree, '3.0');

  say('Your turn');
  console.log(`The sandbox stays in ${SANDBOX}; version 3.0 is waiting on its remote (now file://${repo}).`);
  console.log(`  atomhost --sysroot ${sysroot} status`);
  console.log(`  atomhost --sysroot ${sysroot} upgrade --preview`);
  console.log(`  atomhost --sysroot ${sysroot} upgrade`);
  console.log(`  atomhost --sysroot ${sysroot} rollback`);
  console.log(`  atomhost --sysroot ${sysroot} kargs --append quiet`);
  console.log(`  atomhost --sysroot ${sysroot} deploy 1.0`);
  console.log(`Remove it with: npm run demo -- clean`);
}

/** A registries.conf drop-in that lets the demo's local registry be reached over plain HTTP. */
const demoRegistryConf = (host: string) => `[[registry]]\nlocation = "${host}"\ninsecure = true\n`;

/**
 * The same host under a real systemd (a test host: systemd as PID 1 in private
 * namespaces over an overlay of this machine, never on its real root), where atomhostd
 * answers the CLI over the system bus, supervises the stack and rolls back by itself.
 */
async function agentPart(repo: string, registry: string) {
  const { TestHost } = await import('./testhost/testhost.js');
  const disk = join(SANDBOX, 'host');
  const inside = '/var/lib/atomhost-demo';
  await makeHostDisk(disk, { osname: OS, ref: REF, remote: 'demo', repoUrl: `file://${repo}` });
  const kport = await freePort();
  const kubelet = (v: string, works: boolean) => ({
    layers: [{ busybox: true }, { files: { 'www/index.html': `kubelet-demo ${v}\n` } }],
    cmd: works ? ['/bin/httpd', '-f', '-p', `127.0.0.1:${kport}`, '-h', '/www'] : ['/bin/sh', '-c', `sleep 1; echo "kubelet-demo ${v}: cannot reach the API server" >&2; exit 1`],
  });
  await buildAndPush(registry, 'kubelet-demo:stable', kubelet('1.31', true));

  say('Boot a test host (systemd as PID 1, a system bus, journald) whose disk is this sysroot');
  const th = await TestHost.boot({
    binds: [[disk, inside]],
    enable: ['atomhost-reconcile.service', 'atomhost-health.service'],
    agentEnv: { ATOMHOST_SYSROOT: `${inside}/sysroot`, ATOMHOST_HEALTH_DEADLINE_MS: '20000' },
  });
  // The test host's own /etc (its overlay), where atomhostd reads registries.conf.
  await th.exec('sh', ['-c', `mkdir -p /etc/containers/registries.conf.d && cat > /etc/containers/registries.conf.d/50-demo.conf <<'EOF'\n${demoRegistryConf(registry)}EOF`]);
  const inHost = async (args: string[], show = 'atomhost') => {
    process.stdout.write(`${bold('[testhost]$')} ${show} ${args.join(' ')}\n`);
    const r = show === 'atomhost' ? await th.exec('atomhost', args) : await th.exec(show, args);
    if (r.stdout) process.stdout.write(`${r.stdout}\n`);
    if (r.stderr) process.stdout.write(`${r.stderr}\n`);
    return r.exitCode;
  };
  try {
    say('atomhostd answers the CLI (no --sysroot): the host, its containers, its stack');
    await inHost(['status']);
    await inHost(['container', 'install', '--role', 'network', `${registry}/etcd-demo:3.6`]);
    await inHost(['container', 'install', '--role', 'kubelet', '--probe-http', `http://127.0.0.1:${kport}/index.html`, `${registry}/kubelet-demo:stable`]);
    await inHost(['stack', 'status']);

    say('A broken kubelet image is published; the update is rolled back by the health gate');
    await buildAndPush(registry, 'kubelet-demo:stable', kubelet('1.32', false));
    await inHost(['container', 'update', 'kubelet-demo']);
    await inHost(['container', 'list']);
    await inHost(['stack', 'status']);
    // A kubelet that fails at its start is put back before any revision is made (containerRestored);
    // one that starts but fails its probes is rolled back by the gate (autoRollback).
    say('Why, in the journal (MESSAGE_IDs of a restored start failure and of an automatic rollback)');
    await inHost([`MESSAGE_ID=${MESSAGE_IDS.containerRestored}`, `MESSAGE_ID=${MESSAGE_IDS.autoRollback}`, '-o', 'cat', '--no-pager'], 'journalctl');
  } finally {
    await th.shutdown();
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
