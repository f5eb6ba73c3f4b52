// Registry authentication against a real docker-registry behind htpasswd: no
// credentials is a clear refusal; credentials from an auth.json (REGISTRY_AUTH_FILE)
// work and never appear in the output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';

let f: OsFixture;
let reg: Registry;
const USER = 'ops';
const PASSWORD = 's3cret-Pa55';

before(async () => {
  if (process.getuid?.() !== 0) return;
  f = await OsFixture.createDeployed();
  reg = await startRegistry(join(f.scratch.dir, 'registry'), { htpasswd: { user: USER, password: PASSWORD } });
  process.env.ATOMHOST_INSECURE_REGISTRIES = reg.host;
  await buildAndPush(reg.host, 'private:1', { layers: [{ files: { hello: 'world' } }], cmd: ['/hello'] }, { creds: `${USER}:${PASSWORD}` });
});
after(async () => {
  delete process.env.REGISTRY_AUTH_FILE;
  await reg?.stop();
  await f?.dispose();
});

test('without credentials the registry refusal is named; nothing changes', async (t) => {
  if (!requireRoot(t)) return;
  process.env.REGISTRY_AUTH_FILE = join(f.scratch.dir, 'none.json');
  const before = await f.snapshot();
  const r = await f.cli('container', 'install', `${reg.host}/private:1`);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`^error: registry ${reg.host.replace(/\./g, '\\.')} needs credentials`));
  assert.deepEqual(await f.snapshot(), before);
});

test('wrong credentials are refused', async (t) => {
  if (!requireRoot(t)) return;
  const file = join(f.scratch.dir, 'wrong.json');
  await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:nope`).toString('base64') } } }));
  process.env.REGISTRY_AUTH_FILE = file;
  const r = await f.cli('container', 'install', `${reg.host}/private:1`);
  assert.match(r.stderr, /refused the credentials/);
  assert.doesNotMatch(r.stderr, /nope/);
});

test('credentials from an auth.json file are used and never printed', async (t) => {
  if (!requireRoot(t)) return;
  const file = join(f.scratch.dir, 'auth.json');
  await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
  process.env.REGISTRY_AUTH_FILE = file;
  const r = await f.cli('--json', 'container', 'install', `${reg.host}/private:1`);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD));
  assert.ok(!(await f.revisionFiles().then((x) => JSON.stringify(x))).includes(PASSWORD), 'no secret in the revision records');
});
