// containers-registries.conf(5) v2 as atomhost reads it: real TOML files in a directory
// laid out as /etc/containers (ATOMHOST_CONTAINERS_CONF_DIR), Debian's own shipped files,
// and pulls through a real docker-registry on 127.0.0.1 reached only through what
// registries.conf says (no ATOMHOST_INSECURE_REGISTRIES here).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistriesConf, pullSources, findRegistry, RegistriesConfError, BlockedRegistryError } from '../../containers/registries-conf.js';
import { resolveName, ShortNameError } from '../../containers/short-names.js';
import { endpointHost, planImage } from '../../containers/image-source.js';
import { formatReference, parseReference } from '../../containers/reference.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireFile, requireRoot } from '../helpers/capability.js';
import { buildAndPush, freePort, startRegistry, type Registry } from './fixtures.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
let scratch: string;
let n = 0;

/** A conf dir: registries.conf (when given) and registries.conf.d/<name> drop-ins. */
async function confDir(main: string | null, dropins: Record<string, string> = {}): Promise<string> {
  const dir = join(scratch, `conf${n++}`);
  await mkdir(join(dir, 'registries.conf.d'), { recursive: true });
  if (main !== null) await writeFile(join(dir, 'registries.conf'), main);
  for (const [name, text] of Object.entries(dropins)) await writeFile(join(dir, 'registries.conf.d', name), text);
  return dir;
}

const sources = (dir: string, image: string) => {
  const conf = loadRegistriesConf(dir);
  return pullSources(conf, resolveName(conf, image).candidates[0]).sources.map((s) => `${s.kind} ${formatReference(s.reference)}${s.insecure ? ' insecure' : ''}`);
};

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'atomhost-regconf-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('parsing and merging', () => {
  test('drop-ins merge in lexical order: a later [[registry]] with the same prefix replaces it, search and aliases are overridden, "" erases an alias', async () => {
    const dir = await confDir(
      `unqualified-search-registries = ["quay.io"]\n[[registry]]\nprefix = "example.com/a"\nlocation = "first.example.net/a"\n[[registry]]\nlocation = "kept.example.com"\ninsecure = true\n[aliases]\n"tool" = "quay.io/tools/tool"\n"gone" = "quay.io/x/gone"\n`,
      {
        '10-b.conf': `[[registry]]\nprefix = "example.com/a"\nlocation = "second.example.net/a"\n[aliases]\n"gone" = ""\n`,
        // "9-" sorts after "10-" (lexical, as containers/image reads them), so it wins.
        '9-c.conf': `unqualified-search-registries = ["registry.example.org"]\n[[registry]]\nprefix = "example.com/a"\nlocation = "third.example.net/a"\n`,
        'ignored.txt': 'not toml at all [[[',
      },
    );
    const conf = loadRegistriesConf(dir);
    assert.deepEqual(conf.files.map((f) => f.slice(dir.length + 1)), ['registries.conf', 'registries.conf.d/10-b.conf', 'registries.conf.d/9-c.conf']);
    assert.deepEqual(sources(dir, 'example.com/a/app:1'), ['primary third.example.net/a/app:1']);
    assert.equal(findRegistry(conf, 'example.com/a/app:1')?.entry.origin, `${dir}/registries.conf.d/9-c.conf:2`);
    assert.deepEqual(sources(dir, 'kept.example.com/app'), ['primary kept.example.com/app:latest insecure']);
    assert.deepEqual(conf.search, { registries: ['registry.example.org'], origin: `${dir}/registries.conf.d/9-c.conf:1` });
    assert.equal(conf.aliases.get('tool')?.value, 'quay.io/tools/tool');
    assert.equal(conf.aliases.has('gone'), false);
  });

  test("Debian's shipped registries.conf and shortnames.conf are read as they are", async (t) => {
    if (!requireFile(t, '/etc/containers/registries.conf.d/shortnames.conf', "golang-github-containers-common, which the set-up's podman brings")) return;
    const dir = await confDir(null);
    if (existsSync('/etc/containers/registries.conf')) await copyFile('/etc/containers/registries.conf', join(dir, 'registries.conf'));
    await copyFile('/etc/containers/registries.conf.d/shortnames.conf', join(dir, 'registries.conf.d', 'shortnames.conf'));
    const conf = loadRegistriesConf(dir);
    assert.ok(conf.aliases.size > 20, `${conf.aliases.size} aliases`);
    assert.equal(formatReference(resolveName(conf, 'alpine:3.20').candidates[0]), 'docker.io/library/alpine:3.20');
    assert.equal(formatReference(resolveName(conf, 'fedora').candidates[0]), 'registry.fedoraproject.org/fedora:latest');
  });

  test('a version 1 file is refused, naming the file and the key', async () => {
    const dir = await confDir(`# old style\n[registries.search]\nregistries = ['docker.io']\n\n[registries.insecure]\nregistries = ['127.0.0.1:5000']\n`);
    assert.throws(() => loadRegistriesConf(dir), (e: Error) => {
      assert.ok(e instanceof RegistriesConfError);
      assert.match(e.message, new RegExp(`^${dir}/registries.conf:2: registries\\.search: this is the version 1 format`));
      return true;
    });
  });

  test('one location under two prefixes with different insecure settings is refused, naming both entries', async () => {
    const dir = await confDir(`[[registry]]\nprefix = "a.example.com"\nlocation = "real.example.com"\ninsecure = true\n`, { '10-b.conf': `[[registry]]\nprefix = "b.example.com"\nlocation = "real.example.com"\n` });
    assert.throws(() => loadRegistriesConf(dir), new RegExp(`^RegistriesConfError: ${dir}/registries.conf.d/10-b.conf:1: \\[\\[registry\\]\\] location "real.example.com" is also at ${dir}/registries.conf:1 with different insecure/blocked settings`));
  });

  test('malformed TOML is refused with its file, line and column', async () => {
    const dir = await confDir('unqualified-search-registries = ["quay.io"]\n', { '50-bad.conf': '[[registry]]\nlocation = "a.example.com"\ninsecure = tru\n' });
    assert.throws(() => loadRegistriesConf(dir), new RegExp(`^RegistriesConfError: ${dir}/registries.conf.d/50-bad.conf:3:\\d+: invalid TOML`));
  });

  test('a wrong type or value names the file, line and key', async () => {
    const cases: [string, RegExp][] = [
      ['\n[[registry]]\nlocation = "a.example.com"\n\n[[registry]]\nlocation = "b.example.com"\ninsecure = "yes"\n', /:7: registry\[1\]\.insecure: must be true or false \(got "yes"\)/],
      ['unqualified-search-registries = "quay.io"\n', /:1: unqualified-search-registries: must be an array of strings/],
      ['short-name-mode = "lenient"\n', /:1: short-name-mode: must be one of enforcing, permissive, disabled/],
      ['[[registry]]\nlocation = "http://a.example.com"\n', /:2: registry\[0\]\.location: URI schemes are not supported/],
      ['[[registry]]\nprefix = "*.example.com"\nlocation = "b.example.com"\n', /:3: registry\[0\]\.location: cannot be set with the wildcard prefix/],
      ['[[registry]]\nprefix = "example.*.com"\n', /:2: registry\[0\]\.prefix: a wildcard may only open the prefix/],
      ['[[registry]]\nlocation = "a.example.com"\n[[registry.mirror]]\nlocation = "m.example.com"\npull-from-mirror = "sometimes"\n', /:5: registry\[0\]\.mirror\[0\]\.pull-from-mirror: must be one of all, digest-only, tag-only/],
      ['[[registry]]\nlocation = "a.example.com"\npull-from-mirror = "all"\n', /:3: registry\[0\]\.pull-from-mirror: belongs in a \[\[registry\.mirror\]\] table/],
      ['[[registry]]\ninsecure = true\n', /:1: registry\[0\]: has neither prefix nor location/],
      ['[aliases]\n"quay.io/x" = "quay.io/x/y"\n', /:2: aliases\."quay\.io\/x": an alias name must be a short name/],
      ['[aliases]\n"x" = "y/z"\n', /:2: aliases\."x": the alias "y\/z" must be fully qualified/],
      ['[aliases]\n"x" = "quay.io/x:1"\n', /:2: aliases\."x": the alias "quay\.io\/x:1" may not carry a tag or digest/],
      // Hostile shapes: what is spliced into an image name must be a valid start of one.
      ['[[registry]]\nprefix = "example.com"\nlocation = "example.net/../../etc"\n', /:3: registry\[0\]\.location: "example\.net\/\.\.\/\.\.\/etc": the repository name must be/],
      ['[[registry]]\nlocation = "bad_host"\n', /:2: registry\[0\]\.location: "bad_host" is not a registry host/],
      ['registry = 5\n', /:1: registry: must be an array of tables/],
      ['[[registry]]\nlocation = "a.example.com"\nmirror = "m.example.com"\n', /:3: registry\[0\]\.mirror: must be an array of tables/],
      ['[[registry]]\nlocation = "a.example.com"\n[[registry.mirror]]\ninsecure = true\n', /:3: registry\[0\]\.mirror\[0\]\.location: is missing/],
      ['[aliases]\n"__proto__" = "quay.io/x"\n', /:2: aliases\."__proto__": invalid alias name/],
      ['\u0000\u0001\u00ff', /:1:1: invalid TOML/],
      ['a = ['.repeat(2000), /:1:\d+: invalid TOML/],
    ];
    for (const [text, re] of cases) {
      const dir = await confDir(text);
      assert.throws(() => loadRegistriesConf(dir), (e: Error) => e instanceof RegistriesConfError && e.message.startsWith(`${dir}/registries.conf:`) && re.test(e.message), text);
    }
  });
});

describe('matching and rewriting', () => {
  test('the longest prefix wins, only at a separator; *.example.com matches subdomains only', async () => {
    const dir = await confDir(
      `[[registry]]\nprefix = "example.com"\nlocation = "one.example.net"\n[[registry]]\nprefix = "example.com/team"\nlocation = "two.example.net/t"\n` +
        `[[registry]]\nprefix = "example.com/team/app:2"\nlocation = "three.example.net/pinned"\n[[registry]]\nprefix = "*.corp.example"\ninsecure = true\n`,
    );
    assert.deepEqual(sources(dir, 'example.com/team/app:1'), ['primary two.example.net/t/app:1']);
    assert.deepEqual(sources(dir, 'example.com/team/app:2'), ['primary three.example.net/pinned']);
    assert.deepEqual(sources(dir, 'example.com/teamwork/app'), ['primary one.example.net/teamwork/app:latest']);
    assert.deepEqual(sources(dir, 'example.community/app'), ['primary example.community/app:latest']);
    assert.deepEqual(sources(dir, 'a.corp.example/app'), ['primary a.corp.example/app:latest insecure']);
    assert.deepEqual(sources(dir, 'b.a.corp.example:5000/app'), ['primary b.a.corp.example:5000/app:latest insecure']);
    assert.deepEqual(sources(dir, 'corp.example/app'), ['primary corp.example/app:latest']);
    assert.deepEqual(sources(dir, 'xcorp.example/app'), ['primary xcorp.example/app:latest']);
  });

  test('mirrors come first, in order; pull-from-mirror digest-only and tag-only pick by the reference', async () => {
    const dir = await confDir(
      `[[registry]]\nprefix = "example.com/x"\nlocation = "primary.example.net/x"\n` +
        `[[registry.mirror]]\nlocation = "m1.example.net/mx"\npull-from-mirror = "digest-only"\n` +
        `[[registry.mirror]]\nlocation = "m2.example.net"\ninsecure = true\npull-from-mirror = "tag-only"\n` +
        `[[registry.mirror]]\nlocation = "m3.example.net/all"\n`,
    );
    assert.deepEqual(sources(dir, 'example.com/x/app:1'), ['mirror m2.example.net/app:1 insecure', 'mirror m3.example.net/all/app:1', 'primary primary.example.net/x/app:1']);
    assert.deepEqual(sources(dir, `example.com/x/app@${DIGEST}`), [`mirror m1.example.net/mx/app@${DIGEST}`, `mirror m3.example.net/all/app@${DIGEST}`, `primary primary.example.net/x/app@${DIGEST}`]);
    const plan = planImage('example.com/x/app:1', { conf: loadRegistriesConf(dir) });
    assert.deepEqual(plan.candidates[0].skipped, [{ location: 'm1.example.net/mx', why: 'pull-from-mirror = digest-only and the reference has no digest' }]);
  });

  test('a blocked prefix refuses the name, naming the file and entry', async () => {
    const dir = await confDir(null, { '20-block.conf': `\n[[registry]]\nprefix = "example.com/bad"\nblocked = true\n` });
    const conf = loadRegistriesConf(dir);
    assert.throws(() => pullSources(conf, parseReference('example.com/bad/app:1')), (e: Error) => {
      assert.ok(e instanceof BlockedRegistryError);
      assert.equal(e.message, `example.com/bad/app:1 is blocked by registries.conf: [[registry]] prefix "example.com/bad" has blocked = true (${dir}/registries.conf.d/20-block.conf:2)`);
      return true;
    });
    assert.deepEqual(sources(dir, 'example.com/badger/app'), ['primary example.com/badger/app:latest']);
  });

  test('docker.io: single names get library/, index.docker.io is docker.io, the endpoint is registry-1.docker.io', async () => {
    const dir = await confDir(`unqualified-search-registries = ["docker.io"]\n[[registry]]\nprefix = "docker.io/library/busybox"\nlocation = "hub-cache.example.net/busybox"\n`);
    const conf = loadRegistriesConf(dir);
    const q = (s: string) => formatReference(resolveName(conf, s).candidates[0]);
    assert.equal(q('docker.io/busybox'), 'docker.io/library/busybox:latest');
    assert.equal(q('index.docker.io/busybox:1.36'), 'docker.io/library/busybox:1.36');
    assert.equal(q('docker.io/someone/tool'), 'docker.io/someone/tool:latest');
    assert.equal(q('busybox:1.36'), 'docker.io/library/busybox:1.36');
    assert.equal(q('someone/tool'), 'docker.io/someone/tool:latest');
    // The prefix names /library explicitly, as containers-registries.conf(5) asks.
    assert.deepEqual(sources(dir, 'busybox'), ['primary hub-cache.example.net/busybox:latest']);
    assert.deepEqual(sources(dir, 'docker.io/library/alpine'), ['primary docker.io/library/alpine:latest']);
    assert.equal(endpointHost('docker.io'), 'registry-1.docker.io');
    assert.equal(endpointHost('quay.io'), 'quay.io');
  });
});

describe('short names', () => {
  test('an alias decides before the search registries; its tag and digest come from the short name', async () => {
    const dir = await confDir(`unqualified-search-registries = ["quay.io", "docker.io"]\n`, { '000-shortnames.conf': `[aliases]\n  "tool" = "registry.example.com/team/tool"\n` });
    const conf = loadRegistriesConf(dir);
    const r = resolveName(conf, `tool:2@${DIGEST}`);
    assert.equal(r.rationale, 'alias');
    assert.equal(r.origin, `${dir}/registries.conf.d/000-shortnames.conf:2`);
    assert.deepEqual(r.candidates.map(formatReference), [`registry.example.com/team/tool:2@${DIGEST}`]);
  });

  test('in enforcing mode (the default) an ambiguous short name is an error listing the candidates', async () => {
    const dir = await confDir(`unqualified-search-registries = ["quay.io", "docker.io"]\n`);
    assert.throws(() => resolveName(loadRegistriesConf(dir), 'tool:1'), (e: Error) => {
      assert.ok(e instanceof ShortNameError);
      assert.match(e.message, /short name "tool:1" is ambiguous: it could be quay\.io\/tool, docker\.io\/library\/tool/);
      assert.match(e.message, new RegExp(`unqualified-search-registries at ${dir}/registries.conf:1; short-name-mode enforcing, the default`));
      return true;
    });
  });

  test('permissive and disabled try every search registry in order; one search registry is no ambiguity; none is an error', async () => {
    for (const mode of ['permissive', 'disabled']) {
      const dir = await confDir(`short-name-mode = "${mode}"\nunqualified-search-registries = ["quay.io", "docker.io"]\n`);
      assert.deepEqual(resolveName(loadRegistriesConf(dir), 'tool').candidates.map(formatReference), ['quay.io/tool:latest', 'docker.io/library/tool:latest']);
    }
    const one = await confDir(`unqualified-search-registries = ["registry.example.com"]\n`);
    assert.deepEqual(resolveName(loadRegistriesConf(one), 'tool').candidates.map(formatReference), ['registry.example.com/tool:latest']);
    const none = await confDir(null);
    assert.throws(() => resolveName(loadRegistriesConf(none), 'tool'), /short name "tool" has no alias and no unqualified-search-registries are defined/);
  });
});

describe('pulls through a real registry, as registries.conf says', () => {
  let f: OsFixture;
  let reg: Registry;
  let digest = '';
  let dead = '';
  const saved = { conf: process.env.ATOMHOST_CONTAINERS_CONF_DIR, insecure: process.env.ATOMHOST_INSECURE_REGISTRIES };

  before(async () => {
    if (process.getuid?.() !== 0) return;
    delete process.env.ATOMHOST_INSECURE_REGISTRIES;
    f = await OsFixture.createDeployed();
    reg = await startRegistry(join(f.scratch.dir, 'registry'));
    dead = `127.0.0.1:${await freePort()}`;
    // The registry's only name for it: real-apps/web. Everything else is registries.conf.
    digest = await buildAndPush(reg.host, 'real-apps/web:1', { layers: [{ files: { 'www/index.html': 'web 1\n' } }], cmd: ['/www/index.html'] });
  });
  after(async () => {
    for (const [k, v] of [['ATOMHOST_CONTAINERS_CONF_DIR', saved.conf], ['ATOMHOST_INSECURE_REGISTRIES', saved.insecure]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await reg?.stop();
    await f?.dispose();
  });

  const useConf = async (main: string | null, dropins: Record<string, string> = {}) => {
    const dir = await confDir(main, dropins);
    process.env.ATOMHOST_CONTAINERS_CONF_DIR = dir;
    return dir;
  };
  const imageOf = async (name: string) => (await f.cliJson<{ name: string; image: string; digest: string }[]>('container', 'list')).find((c) => c.name === name);

  test('a location rewrite pulls from the registry under its other name; a short name through an alias; the logical name is recorded', async (t) => {
    if (!requireRoot(t)) return;
    await useConf(`[[registry]]\nprefix = "registry.example.com/apps"\nlocation = "${reg.host}/real-apps"\ninsecure = true\n`, { 'shortnames.conf': `[aliases]\n"web" = "registry.example.com/apps/web"\n` });
    const r = await f.cli('container', 'install', '--name', 'rewritten', 'registry.example.com/apps/web:1');
    assert.equal(r.exitCode, 0, r.stderr);
    const c = await imageOf('rewritten');
    assert.equal(c?.image, 'registry.example.com/apps/web:1');
    assert.equal(c?.digest, digest);
    const s = await f.cli('container', 'install', '--name', 'aliased', 'web:1');
    assert.equal(s.exitCode, 0, s.stderr);
    assert.equal((await imageOf('aliased'))?.image, 'registry.example.com/apps/web:1');
  });

  test('a mirror that is down falls back to the primary; without insecure = true plain HTTP is refused', async (t) => {
    if (!requireRoot(t)) return;
    const dir = await useConf(`[[registry]]\nprefix = "registry.example.com/apps"\nlocation = "${reg.host}/real-apps"\n`, {
      // Same prefix in a drop-in: replaces the entry above (which would use https).
      '50-mirror.conf': `[[registry]]\nprefix = "registry.example.com/apps"\nlocation = "${reg.host}/real-apps"\ninsecure = true\n[[registry.mirror]]\nlocation = "${dead}/cache"\ninsecure = true\n`,
    });
    const r = await f.cli('container', 'install', '--name', 'fallback', 'registry.example.com/apps/web:1');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((await imageOf('fallback'))?.digest, digest);
    await rm(join(dir, 'registries.conf.d', '50-mirror.conf'));
    const before = await f.snapshot();
    const https = await f.cli('container', 'install', '--name', 'tls', 'registry.example.com/apps/web:1');
    assert.equal(https.exitCode, 1);
    assert.match(https.stderr, new RegExp(`registry ${reg.host.replace(/\./g, '\\.')} is unreachable`));
    assert.deepEqual(await f.snapshot(), before);
  });

  test('pull-from-mirror = digest-only: a tag goes to the primary only (down here), a digest to the mirror', async (t) => {
    if (!requireRoot(t)) return;
    await useConf(`[[registry]]\nprefix = "pinned.example.com"\nlocation = "${dead}"\ninsecure = true\n[[registry.mirror]]\nlocation = "${reg.host}/real-apps"\ninsecure = true\npull-from-mirror = "digest-only"\n`);
    const before = await f.snapshot();
    const byTag = await f.cli('container', 'install', '--name', 'bytag', 'pinned.example.com/web:1');
    assert.equal(byTag.exitCode, 1);
    assert.match(byTag.stderr, new RegExp(`registry ${dead} is unreachable`));
    assert.deepEqual(await f.snapshot(), before);
    const byDigest = await f.cli('container', 'install', '--name', 'bydigest', `pinned.example.com/web@${digest}`);
    assert.equal(byDigest.exitCode, 0, byDigest.stderr);
    assert.equal((await imageOf('bydigest'))?.image, `pinned.example.com/web@${digest}`);
  });

  test('permissive mode: a short name is tried at each search registry in order; the one that has it is recorded', async (t) => {
    if (!requireRoot(t)) return;
    await useConf(`short-name-mode = "permissive"\nunqualified-search-registries = ["${dead}", "${reg.host}"]\n[[registry]]\nlocation = "${dead}"\ninsecure = true\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const r = await f.cli('container', 'install', '--name', 'searched', 'real-apps/web:1');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((await imageOf('searched'))?.image, `${reg.host}/real-apps/web:1`);
    const missing = await f.cli('container', 'install', '--name', 'missing', 'real-apps/nothing:1');
    assert.equal(missing.exitCode, 1);
    assert.match(missing.stderr, new RegExp(`could not pull real-apps/nothing:1: tried 2 sources \\(primary ${dead}/real-apps/nothing:1: registry ${dead} is unreachable.*; primary ${reg.host}/real-apps/nothing:1: .*not found`));
  });

  test('a blocked registry is refused with the file named; an ambiguous short name lists its candidates; nothing changes', async (t) => {
    if (!requireRoot(t)) return;
    const dir = await useConf(`unqualified-search-registries = ["${reg.host}", "registry.example.com"]\n`, { '90-block.conf': `[[registry]]\nlocation = "${reg.host}"\nblocked = true\n` });
    const before = await f.snapshot();
    const blocked = await f.cli('container', 'install', '--name', 'blocked', `${reg.host}/real-apps/web:1`);
    assert.equal(blocked.exitCode, 1);
    assert.equal(blocked.stderr.trim(), `error: ${reg.host}/real-apps/web:1 is blocked by registries.conf: [[registry]] prefix "${reg.host}" has blocked = true (${dir}/registries.conf.d/90-block.conf:1)`);
    const ambiguous = await f.cli('container', 'install', 'web:1');
    assert.equal(ambiguous.exitCode, 2);
    assert.match(ambiguous.stderr, new RegExp(`short name "web:1" is ambiguous: it could be ${reg.host.replace(/\./g, '\\.')}/web, registry\\.example\\.com/web`));
    assert.deepEqual(await f.snapshot(), before);
    const shown = await f.cliJson<{ rationale: string; candidates: { blocked: string | null }[] }>('container', 'resolve', `${reg.host}/x`);
    assert.equal(shown.rationale, 'qualified');
    assert.match(shown.candidates[0].blocked ?? '', /90-block\.conf:1/);
  });
});
