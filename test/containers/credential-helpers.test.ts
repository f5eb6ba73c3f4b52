// Credential helpers (registries.conf `credential-helpers`, auth.json `credHelpers` and
// `credsStore`) against a real docker-registry behind htpasswd: the helpers are real
// executables on PATH speaking the docker-credential-helpers protocol (a shell script with
// its own store), the real CLI installs into a test sysroot. The secret must never appear
// in any output or record; a missing or failing helper is an error naming it.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { helperGet, CredentialHelperError } from '../../containers/credential-helpers.js';
import { parseRegistriesFile, RegistriesConfError } from '../../containers/registries-conf.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';

const USER = 'ci-bot';
const SECRET = 'Hel9er-S3cret-xyz';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// A helper with a store of its own: $HELPER_STORE/<host>.json holds {Username, Secret}. Every
// call is logged (argument and stdin) so the test sees the protocol was spoken.
const STORE_HELPER = `#!/bin/sh
read -r host
echo "$1 $host" >> "$HELPER_STORE/calls.log"
[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }
f="$HELPER_STORE/$host.json"
if [ -f "$f" ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$host" "$(sed -n 1p "$f")" "$(sed -n 2p "$f")"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
`;
const BROKEN_HELPER = `#!/bin/sh
cat >/dev/null
echo "the keychain is locked"
exit 1
`;
// Prints the secret where JSON should be: atomhost must not echo it.
const GARBLED_HELPER = `#!/bin/sh
cat >/dev/null
echo "Username=${USER} Secret=${SECRET}"
`;

let bin: string;
let store: string;
let work: string;
const saved = { ...process.env };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'credhelpers-'));
  bin = join(work, 'bin');
  store = join(work, 'store');
  await mkdir(bin);
  await mkdir(store);
  for (const [name, text] of [['atomtest', STORE_HELPER], ['broken', BROKEN_HELPER], ['garbled', GARBLED_HELPER]]) {
    await writeFile(join(bin, `docker-credential-${name}`), text);
    await chmod(join(bin, `docker-credential-${name}`), 0o755);
  }
  process.env.PATH = `${bin}:${process.env.PATH}`;
  process.env.HELPER_STORE = store;
});
after(async () => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  await rm(work, { recursive: true, force: true });
});

describe('the protocol, helper by helper', () => {
  test('get: the host on stdin, {Username, Secret} on stdout; "not found" is null', async () => {
    await writeFile(join(store, 'reg.example:5000.json'), `${USER}\n${SECRET}\n`);
    const c = await helperGet('atomtest', 'reg.example:5000', 'test');
    assert.deepEqual(c, { username: USER, password: SECRET, source: 'credential helper "atomtest"' });
    assert.equal(await helperGet('atomtest', 'other.example', 'test'), null);
    assert.match(await readFile(join(store, 'calls.log'), 'utf8'), /^get reg\.example:5000\nget other\.example\n/);
  });

  test('missing, failing and garbled helpers are errors naming the helper; the secret is never in them', async () => {
    const fails = async (helper: string, re: RegExp) => {
      const err = await helperGet(helper, 'reg.example', 'credential-helpers at /etc/containers/registries.conf:1').then(() => null, (e: unknown) => e);
      assert.ok(err instanceof CredentialHelperError, `${helper} must fail`);
      assert.match(err.message, new RegExp(`^credential helper "${helper}" \\(docker-credential-${helper}, credential-helpers at /etc/containers/registries\\.conf:1\\) for reg\\.example: `));
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, new RegExp(SECRET));
    };
    await fails('absent', /docker-credential-absent is not installed \(not found on PATH\)/);
    await fails('broken', /failed \(exit 1\): the keychain is locked/);
    await fails('garbled', /answered something that is not the protocol's JSON/);
  });

  test('registries.conf credential-helpers: names only, never a path; errors name file:line', () => {
    const F = '/etc/containers/registries.conf';
    assert.deepEqual(parseRegistriesFile(F, 'credential-helpers = ["containers-auth.json", "pass"]\n').credentialHelpers, { helpers: ['containers-auth.json', 'pass'], origin: `${F}:1` });
    assert.deepEqual(parseRegistriesFile(F, 'credential-helpers = []\n').credentialHelpers?.helpers, ['containers-auth.json'], 'an empty list is the default');
    const bad = (text: string, re: RegExp) => assert.throws(() => parseRegistriesFile(F, text), (e: unknown) => e instanceof RegistriesConfError && re.test(e.message));
    bad('\n\ncredential-helpers = ["../../bin/sh"]\n', /registries\.conf:3: credential-helpers: "\.\.\/\.\.\/bin\/sh" is not a helper name/);
    bad('credential-helpers = "pass"\n', /registries\.conf:1: credential-helpers: must be an array of strings/);
    bad('credential-helpers = ["-rf"]\n', /"-rf" is not a helper name/);
  });
});

describe('pulls from a registry behind htpasswd with credentials from helpers', () => {
  let f: OsFixture;
  let reg: Registry;
  let conf: string;
  let n = 0;

  before(async () => {
    if (process.getuid?.() !== 0) return;
    conf = join(work, 'containers');
    await mkdir(conf);
    process.env.ATOMHOST_CONTAINERS_CONF_DIR = conf;
    process.env.REGISTRY_AUTH_FILE = join(work, 'no-auth.json');
    f = await OsFixture.createDeployed();
    reg = await startRegistry(join(work, 'registry'), { htpasswd: { user: USER, password: SECRET } });
    process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
    await buildAndPush(reg.host, 'private:1', { layers: [{ files: { hello: 'helped\n' } }], cmd: ['/hello'] }, { creds: `${USER}:${SECRET}` });
  });
  after(async () => {
    await reg?.stop();
    await f?.dispose();
  });

  const helpers = (list: string[]) => writeFile(join(conf, 'registries.conf'), `# test\ncredential-helpers = ${JSON.stringify(list)}\n`);
  const storeCreds = (password: string | null) => (password === null ? rm(join(store, `${reg.host}.json`), { force: true }) : writeFile(join(store, `${reg.host}.json`), `${USER}\n${password}\n`));
  const install = () => f.cli('container', 'install', '--name', `c${n++}`, `${reg.host}/private:1`);
  const noSecret = (r: { stdout: string; stderr: string }) => assert.ok(!`${r.stdout}${r.stderr}`.includes(SECRET), 'the secret never appears in the output');
  const refused = async (re: RegExp) => {
    const before = await f.snapshot();
    const r = await install();
    assert.notEqual(r.exitCode, 0, 'must fail');
    assert.match(r.stderr, re);
    noSecret(r);
    assert.deepEqual(await f.snapshot(), before, 'a refused pull changes nothing');
  };

  test('a helper of credential-helpers answers: the pull works, the secret is nowhere', async (t) => {
    if (!requireRoot(t)) return;
    await helpers(['atomtest']);
    await storeCreds(SECRET);
    await rm(join(store, 'calls.log'), { force: true });
    const r = await install();
    assert.equal(r.exitCode, 0, r.stderr);
    noSecret(r);
    assert.match(await readFile(join(store, 'calls.log'), 'utf8'), new RegExp(`^get ${esc(reg.host)}$`, 'm'), 'asked with get and the registry host on stdin');
    assert.ok(!JSON.stringify(await f.revisionFiles()).includes(SECRET), 'no secret in the revision records');
  });

  test('"not found" falls through to the next source (the auth files)', async (t) => {
    if (!requireRoot(t)) return;
    await storeCreds(null);
    await helpers(['atomtest', 'containers-auth.json']);
    const auth = join(work, 'auth.json');
    await writeFile(auth, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${SECRET}`).toString('base64') } } }));
    process.env.REGISTRY_AUTH_FILE = auth;
    try {
      const r = await install();
      assert.equal(r.exitCode, 0, r.stderr);
      noSecret(r);
    } finally {
      process.env.REGISTRY_AUTH_FILE = join(work, 'no-auth.json');
    }
  });

  test('no source has credentials: the refusal names the sources and the registries.conf line', async (t) => {
    if (!requireRoot(t)) return;
    await storeCreds(null);
    await helpers(['atomtest']);
    await refused(new RegExp(`^error: registry ${esc(reg.host)} needs credentials; none were found in credential helper docker-credential-atomtest \\(credential-helpers at ${esc(join(conf, 'registries.conf'))}:2\\)`));
  });

  test('a missing or failing helper is an error naming it', async (t) => {
    if (!requireRoot(t)) return;
    await helpers(['absent']);
    await refused(/credential helper "absent" \(docker-credential-absent, credential-helpers at .*registries\.conf:2\) for 127\.0\.0\.1:\d+: docker-credential-absent is not installed/);
    await helpers(['broken']);
    await refused(/credential helper "broken" .*: failed \(exit 1\): the keychain is locked/);
    await helpers(['garbled']);
    await refused(/credential helper "garbled" .*: answered something that is not the protocol's JSON/);
  });

  test('wrong credentials from a helper are refused naming the helper, never showing them', async (t) => {
    if (!requireRoot(t)) return;
    await helpers(['atomtest']);
    await storeCreds(`${SECRET}-wrong`);
    await refused(/registry 127\.0\.0\.1:\d+ refused the credentials from credential helper "atomtest"/);
  });

  test('auth.json credHelpers and credsStore name helpers too', async (t) => {
    if (!requireRoot(t)) return;
    await rm(join(conf, 'registries.conf'), { force: true });
    await storeCreds(SECRET);
    const auth = join(work, 'helpers-auth.json');
    process.env.REGISTRY_AUTH_FILE = auth;
    try {
      await writeFile(auth, JSON.stringify({ credHelpers: { [reg.host]: 'atomtest' } }));
      let r = await install();
      assert.equal(r.exitCode, 0, r.stderr);
      noSecret(r);
      await writeFile(auth, JSON.stringify({ auths: {}, credsStore: 'atomtest' }));
      r = await install();
      assert.equal(r.exitCode, 0, r.stderr);
      await writeFile(auth, JSON.stringify({ credHelpers: { [reg.host]: 'broken' } }));
      await refused(new RegExp(`credential helper "broken" \\(docker-credential-broken, credHelpers in ${esc(auth)}\\)`));
    } finally {
      process.env.REGISTRY_AUTH_FILE = join(work, 'no-auth.json');
    }
  });
});
