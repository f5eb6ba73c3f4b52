// registries.conf as atomhostd reads it on a host set up for podman: a test host (real
// systemd as PID 1, the real system bus) over this machine, whose /etc/containers holds
// Debian's own registries.conf and shortnames.conf; the test adds a drop-in as an admin
// would. atomhostd runs without ATOMHOST_INSECURE_REGISTRIES: only the files decide.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireRoot } from '../helpers/capability.js';
import { TestHost } from '../testhost/testhost.js';
import { buildAndPush, type Registry } from './fixtures.js';
import { prepareDiskHost, type DiskHost } from '../helpers/disk-host.js';

let th: TestHost;
let fx: DiskHost;
let reg: Registry;

const atomhost = (...args: string[]) => th.exec('atomhost', args);

before(async () => {
  if (process.getuid?.() !== 0) return;
  fx = await prepareDiskHost('atomhost-regconf-daemon-', { sizeMiB: 1024 });
  reg = fx.reg;
  await buildAndPush(reg.host, 'apps/web:1', { layers: [{ busybox: true }], cmd: ['/bin/sleep', '3600'] });
  th = await fx.boot();
});

after(async () => {
  await fx?.dispose(th);
});

test('atomhostd pulls from an insecure registry named in a registries.conf.d drop-in, a short name through an alias; an old registries.yaml is named in the error', async (t) => {
  if (!requireRoot(t, 'boots a test host with systemd as PID 1')) return;
  // The way atomhost used to be configured: no longer read, and the error says so.
  await th.sh(`mkdir -p /etc/atomhost && printf 'insecure: ["${reg.host}"]\\n' > /etc/atomhost/registries.yaml`);
  const old = await atomhost('container', 'install', '--name', 'old', `${reg.host}/apps/web:1`);
  assert.equal(old.exitCode, 1, old.stdout);
  assert.match(old.stderr, /note: \/etc\/atomhost\/registries\.yaml is no longer read; registries are configured in \/etc\/containers\/registries\.conf/);
  await th.sh('rm /etc/atomhost/registries.yaml');

  const dropin = '/etc/containers/registries.conf.d/50-local.conf';
  await th.sh(`mkdir -p /etc/containers/registries.conf.d && printf '[[registry]]\\nlocation = "${reg.host}"\\ninsecure = true\\n\\n[aliases]\\n"web" = "${reg.host}/apps/web"\\n' > ${dropin}`);
  const shown = await atomhost('container', 'resolve', 'web:1');
  assert.equal(shown.exitCode, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`^web:1: alias at ${dropin}:6\\n  ${reg.host.replace(/\./g, '\\.')}/apps/web:1\\n    \\[\\[registry\\]\\] prefix "${reg.host.replace(/\./g, '\\.')}" at ${dropin}:1\\n    1\\. primary .* \\(insecure: plain HTTP allowed\\)`));
  const r = await atomhost('container', 'install', 'web:1');
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const list = JSON.parse((await atomhost('--json', 'container', 'list')).stdout) as { name: string; image: string }[];
  assert.deepEqual(list.map((c) => [c.name, c.image]), [['web', `${reg.host}/apps/web:1`]]);
});
