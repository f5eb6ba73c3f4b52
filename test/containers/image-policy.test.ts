// containers-policy.json(5) as atomhost applies it: real GPG keys in a temporary GNUPGHOME,
// images signed by `skopeo copy --sign-by` into a registries.d lookaside (file:// and
// http://), a real docker-registry on 127.0.0.1, and the real CLI installing into a test
// sysroot. Refusals must name the policy file and entry, and leave nothing in the store.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ImagePolicyFileError, identityMismatch, parseDockerName, parseImagePolicy, requirementsFor } from '../../containers/image-policy.js';
import { lookasideFor } from '../../containers/image-signatures.js';
import { parseReference } from '../../containers/reference.js';
import { serveDirectory, type StaticServer } from '../../sandbox/http-server.js';
import { OsFixture } from '../helpers/os-fixture.js';
import { requireRoot } from '../helpers/capability.js';
import { buildAndPush, startRegistry, type Registry } from './fixtures.js';

describe('policy.json parsing: errors name the file and the JSON path', () => {
  const F = '/etc/containers/policy.json';
  const bad = (text: string, re: RegExp) => {
    assert.throws(() => parseImagePolicy(F, text), (err: unknown) => err instanceof ImagePolicyFileError && err.code === 'AH_ERR_INVALID_ARGUMENT' && re.test(err.message) && err.message.startsWith(`${F}: `));
  };

  test('malformed files', () => {
    bad('{"default": [', /policy\.json: is not valid JSON/);
    bad('[]', /must be an object, not a list/);
    bad('{}', /default: is missing/);
    bad('{"default": []}', /default: must not be an empty list/);
    bad('{"default": [{"type": "insecureAcceptAnything"}], "extra": 1}', /unknown key "extra"/);
    bad('{"default": [{"type": "acceptEverything"}]}', /default\[0\]\.type: unknown requirement type "acceptEverything"/);
    bad('{"default": [{"type": "reject", "keyPath": "/k"}]}', /default\[0\]: unknown key "keyPath"/);
    bad('{"default": [{"type": "reject"}], "transports": {"docker": {"127.0.0.1:5000/app": {"type": "reject"}}}}', /transports\.docker\["127\.0\.0\.1:5000\/app"\]: must be a list of requirements, not an object/);
    bad('{"default": [{"type": "reject"}], "transports": {"docker": {"https://example.com/app": [{"type": "reject"}]}}}', /transports\.docker\["https:\/\/example\.com\/app"\]: is not a valid docker scope/);
    bad('{"default": [{"type": "reject"}], "transports": {"docker": {"Example.com/App": [{"type": "reject"}]}}}', /transports\.docker\["Example\.com\/App"\]: is not a valid docker scope/);
  });

  test('signedBy: keyType, exactly one key source, signedIdentity', () => {
    const sb = (extra: string) => `{"default": [{"type": "reject"}], "transports": {"docker": {"example.com": [{"type": "signedBy", ${extra}}]}}}`;
    const at = /transports\.docker\["example\.com"\]\[0\]/;
    bad(sb('"keyPath": "/k"'), new RegExp(`${at.source}\\.keyType: is missing`));
    bad(sb('"keyType": "X509Certificates", "keyPath": "/k"'), /\.keyType: "X509Certificates" is not supported \(only GPGKeys\)/);
    bad(sb('"keyType": "GPGKeys"'), /\[0\]: exactly one of keyPath, keyPaths, keyData must be set \(none given\)/);
    bad(sb('"keyType": "GPGKeys", "keyPath": "/k", "keyData": "AAAA"'), /exactly one of keyPath, keyPaths, keyData must be set \(keyPath and keyData given\)/);
    bad(sb('"keyType": "GPGKeys", "keyPaths": []'), /\.keyPaths: must be a non-empty list/);
    bad(sb('"keyType": "GPGKeys", "keyPaths": ["/a", 3]'), /\.keyPaths\[1\]: must be a non-empty string, not a number/);
    bad(sb('"keyType": "GPGKeys", "keyData": "not base64!"'), /\.keyData: must be base64/);
    bad(sb('"keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "matchAnything"}'), /\.signedIdentity\.type: unknown signedIdentity type "matchAnything"/);
    bad(sb('"keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "exactReference", "dockerReference": "example.com/app"}'), /\.signedIdentity\.dockerReference: "example\.com\/app" must be a full image reference with a tag or a digest/);
    bad(sb('"keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "remapIdentity", "prefix": "example.com"}'), /\.signedIdentity\.signedPrefix: is missing/);
    bad(sb('"keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "matchExact", "prefix": "x"}'), /\.signedIdentity: unknown key "prefix"/);
  });

  test('the most specific docker scope decides, then "", then default', () => {
    const p = parseImagePolicy(F, JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          '': [{ type: 'insecureAcceptAnything' }],
          'example.com': [{ type: 'reject' }],
          'example.com/ns': [{ type: 'insecureAcceptAnything' }],
          'example.com/ns/app:1': [{ type: 'reject' }],
          '*.corp.example': [{ type: 'reject' }],
          'registry.corp.example:5000/ok': [{ type: 'insecureAcceptAnything' }],
          'docker.io/library/busybox': [{ type: 'reject' }],
        },
      },
    }));
    const entry = (ref: string) => requirementsFor(p, parseDockerName(ref)!).entry;
    assert.equal(entry('example.com/ns/app:1'), 'transports.docker["example.com/ns/app:1"]');
    assert.equal(entry('example.com/ns/app:2'), 'transports.docker["example.com/ns"]');
    assert.equal(entry('example.com/other/app:1'), 'transports.docker["example.com"]');
    assert.equal(entry('registry.corp.example:5000/x/y:1'), 'transports.docker["*.corp.example"]');
    assert.equal(entry('registry.corp.example:5000/ok:1'), 'transports.docker["registry.corp.example:5000/ok"]');
    assert.equal(entry('busybox'), 'transports.docker["docker.io/library/busybox"]', 'busybox normalizes to docker.io/library/busybox');
    assert.equal(entry('quay.io/x:1'), 'transports.docker[""]');
    const noDocker = parseImagePolicy(F, '{"default": [{"type": "reject"}], "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}}');
    assert.equal(requirementsFor(noDocker, parseDockerName('quay.io/x:1')!).entry, 'default');
  });

  test('signedIdentity matching', () => {
    const n = (s: string) => parseDockerName(s)!;
    const D = `sha256:${'a'.repeat(64)}`;
    assert.equal(identityMismatch({ type: 'matchRepoDigestOrExact' }, n('r.io/a:1'), n('r.io/a:1')), null);
    assert.match(identityMismatch({ type: 'matchRepoDigestOrExact' }, n('r.io/a:1'), n('r.io/a:2')) ?? '', /signed for r\.io\/a:2/);
    assert.equal(identityMismatch({ type: 'matchRepoDigestOrExact' }, n(`r.io/a@${D}`), n('r.io/a:7')), null, 'pinned by digest: the repository is enough');
    assert.notEqual(identityMismatch({ type: 'matchExact' }, n(`r.io/a@${D}`), n('r.io/a:7')), null);
    assert.equal(identityMismatch({ type: 'matchRepository' }, n('r.io/a:1'), n('r.io/a:2')), null);
    assert.notEqual(identityMismatch({ type: 'matchRepository' }, n('r.io/a:1'), n('r.io/b:1')), null);
    assert.equal(identityMismatch({ type: 'exactReference', dockerReference: 'r.io/b:3' }, n('r.io/a:1'), n('r.io/b:3')), null);
    assert.equal(identityMismatch({ type: 'exactRepository', dockerRepository: 'r.io/b' }, n('r.io/a:1'), n('r.io/b:9')), null);
    assert.equal(identityMismatch({ type: 'remapIdentity', prefix: 'mirror.local/ns', signedPrefix: 'r.io/ns' }, n('mirror.local/ns/a:1'), n('r.io/ns/a:1')), null);
    assert.notEqual(identityMismatch({ type: 'remapIdentity', prefix: 'mirror.local/ns', signedPrefix: 'r.io/ns' }, n('mirror.local/nsx/a:1'), n('r.io/ns/a:1')), null, 'a prefix matches whole path components');
  });

  test('registries.d: the most specific docker scope gives the lookaside; errors name the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-regd-'));
    try {
      await writeFile(join(dir, 'default.yaml'), 'default-docker:\n  lookaside: https://sigs.example.com/all\n');
      await writeFile(join(dir, 'corp.yaml'), 'docker:\n  r.io/ns:\n    sigstore: file:///var/lib/sigs\n    sigstore-staging: file:///var/lib/staging\n');
      assert.equal((await lookasideFor(parseReference('r.io/ns/a:1'), dir))?.url, 'file:///var/lib/sigs');
      assert.equal((await lookasideFor(parseReference('r.io/other:1'), dir))?.url, 'https://sigs.example.com/all');
      await writeFile(join(dir, 'zz.yaml'), 'default-docker:\n  lookaside: https://twice.example.com\n');
      await assert.rejects(lookasideFor(parseReference('r.io/x:1'), dir), /zz\.yaml: default-docker: is also set in .*default\.yaml/);
      await rm(join(dir, 'zz.yaml'));
      await writeFile(join(dir, 'bad.yaml'), 'docker:\n  r.io:\n    lookaside: ftp://nope\n');
      await assert.rejects(lookasideFor(parseReference('r.io/x:1'), dir), /bad\.yaml: docker\["r\.io"\]\.lookaside: "ftp:\/\/nope" must be a file:\/\/, http:\/\/ or https:\/\/ URL/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pulls under policy.json, with images signed by skopeo --sign-by', () => {
  let f: OsFixture;
  let reg: Registry;
  let work: string;
  let gnupg: string;
  let conf: string;
  let sigstore: string;
  let sigServer: StaticServer;
  let signer = '';
  let other = '';
  let digest = '';
  const saved = process.env.ATOMHOST_CONTAINERS_CONF_DIR;

  const gpg = (args: string[], input?: string) => execa('gpg', ['--batch', '--no-tty', '--homedir', gnupg, ...args], { input, env: { GNUPGHOME: gnupg } });
  const newKey = async (uid: string) => {
    await gpg(['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
    const cols = (await gpg(['--with-colons', '--list-keys', uid])).stdout;
    return cols.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9];
  };
  /** Copies the unsigned base image to `repo`, signed by `key` (or not), through the lookaside. */
  const publish = async (repo: string, key: string | null, extra: string[] = []) => {
    await execa('skopeo', ['--insecure-policy', '--registries.d', join(work, 'registries.d'), 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--remove-signatures', ...(key ? ['--sign-by', key] : []), ...extra, `docker://${reg.host}/base/app:1`, `docker://${reg.host}/${repo}:1`], { env: { GNUPGHOME: gnupg } });
  };
  const usePolicy = async (docker: Record<string, unknown>, dflt: unknown[] = [{ type: 'reject' }]) => {
    await writeFile(join(conf, 'policy.json'), JSON.stringify({ default: dflt, transports: { docker } }, null, 2));
  };
  const signedBy = (keyPath: string, signedIdentity?: object) => [{ type: 'signedBy', keyType: 'GPGKeys', keyPath, ...(signedIdentity ? { signedIdentity } : {}) }];
  const stored = async () => (await execa('ostree', ['refs', `--repo=${f.sysroot}/ostree/repo`, '--list', 'atomhost'])).stdout;
  let n = 0;
  /** Installs and expects a refusal that names the policy and leaves the store as it was. */
  const refused = async (image: string, re: RegExp) => {
    const before = await stored();
    const r = await f.cli('container', 'install', '--name', `c${n++}`, image);
    assert.notEqual(r.exitCode, 0, `${image} must be refused`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, new RegExp(`${join(conf, 'policy.json').replace(/[.]/g, '\\.')}: transports\\.docker\\[`), 'the error names the policy file and the entry');
    assert.equal(await stored(), before, 'a refused image leaves nothing in the store');
    return r.stderr;
  };
  const accepted = async (image: string) => {
    const r = await f.cli('container', 'install', '--name', `c${n++}`, image);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(await stored(), new RegExp(`atomhost/image/${digest.slice(7)}`));
  };

  before(async () => {
    if (process.getuid?.() !== 0) return;
    work = await mkdtemp(join(tmpdir(), 'policy-'));
    gnupg = join(work, 'gnupg');
    await mkdir(gnupg, { mode: 0o700 });
    conf = join(work, 'containers');
    sigstore = join(work, 'sigstore');
    await mkdir(join(conf, 'registries.d'), { recursive: true });
    await mkdir(join(work, 'registries.d'));
    await mkdir(sigstore);
    f = await OsFixture.createDeployed();
    reg = await startRegistry(join(f.scratch.dir, 'registry'));
    process.env.ATOMHOST_CONTAINERS_CONF_DIR = conf;
    await writeFile(join(conf, 'registries.conf'), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    // skopeo writes signatures to the staging URL; atomhost reads them through file:// and, for one namespace, over http://.
    await writeFile(join(work, 'registries.d', 'sign.yaml'), `default-docker:\n  sigstore-staging: file://${sigstore}\n`);
    sigServer = await serveDirectory(sigstore);
    await writeFile(join(conf, 'registries.d', 'default.yaml'), `default-docker:\n  sigstore: file://${sigstore}\ndocker:\n  ${reg.host}/overhttp:\n    lookaside: ${sigServer.url}\n`);
    signer = await newKey('Atomhost Signer <signer@example.org>');
    other = await newKey('Someone Else <else@example.org>');
    // Each exported file must hold exactly the key it is named for (what a policy's keyPath points at).
    const exportKey = async (fpr: string, file: string, armor = false) => {
      await gpg([...(armor ? ['--armor'] : []), '--output', file, '--export', fpr]);
      const shown = (await gpg(['--with-colons', '--show-keys', file])).stdout.split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]);
      assert.equal(shown[0], fpr, `${file} holds ${fpr}`);
    };
    await exportKey(signer, join(work, 'signer.gpg'));
    await exportKey(signer, join(work, 'signer.asc'), true);
    await exportKey(other, join(work, 'other.gpg'));
    assert.notEqual(signer, other);
    digest = await buildAndPush(reg.host, 'base/app:1', { layers: [{ files: { 'www/index.html': 'signed\n' } }], cmd: ['/www/index.html'] });
    await publish('signed/app', signer);
    await publish('overhttp/app', signer);
    await publish('unsigned/app', null);
    await publish('otherkey/app', other);
    await publish('renamed/app', signer, ['--sign-identity', `${reg.host}/signed/app:1`]);
  });
  after(async () => {
    if (saved === undefined) delete process.env.ATOMHOST_CONTAINERS_CONF_DIR;
    else process.env.ATOMHOST_CONTAINERS_CONF_DIR = saved;
    if (gnupg) await execa('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { reject: false });
    await sigServer?.close();
    await reg?.stop();
    await f?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('skopeo wrote the signature where registries.d says: <lookaside>/<repo>@sha256=<hex>/signature-1', async (t) => {
    if (!requireRoot(t)) return;
    const sig = await readFile(join(sigstore, `signed/app@sha256=${digest.slice(7)}`, 'signature-1'));
    assert.ok(sig.length > 0);
  });

  test('reject: refused before any request, naming the scope', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [`${reg.host}/signed`]: [{ type: 'reject' }], '': [{ type: 'insecureAcceptAnything' }] });
    const err = await refused(`${reg.host}/signed/app:1`, /AH_ERR_SIGNATURE|refused/);
    assert.match(err, new RegExp(`transports\\.docker\\["${reg.host.replace(/[.]/g, '\\.')}/signed"\\]: rejected`));
  });

  test('signedBy refuses an unsigned image', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg')) });
    await refused(`${reg.host}/unsigned/app:1`, /\]\[0\]: signedBy: no signature was found for sha256:/);
  });

  test('signedBy refuses an image signed by another key', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg')) });
    await refused(`${reg.host}/otherkey/app:1`, new RegExp(`signedBy: no valid signature by keys in ${join(work, 'signer.gpg').replace(/[.]/g, '\\.')} \\(signature-1: not signed by a key of the policy\\)`));
  });

  test('signedBy refuses a real signature made for another digest (crafted)', async (t) => {
    if (!requireRoot(t)) return;
    await publish('crafted/app', null);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const payload = JSON.stringify({ critical: { type: 'atomic container signature', image: { 'docker-manifest-digest': wrong }, identity: { 'docker-reference': `${reg.host}/crafted/app:1` } }, optional: { creator: 'a test' } });
    const dir = join(sigstore, `crafted/app@sha256=${digest.slice(7)}`);
    await mkdir(dir, { recursive: true });
    await execa('gpg', ['--batch', '--homedir', gnupg, '--local-user', signer, '--output', join(dir, 'signature-1'), '--sign'], { input: payload });
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg')) });
    await refused(`${reg.host}/crafted/app:1`, new RegExp(`signature-1: it signs manifest ${wrong}, not ${digest}`));
    // A second, altered copy of a good signature is bad too; one good signature is enough.
    const good = await readFile(join(sigstore, `signed/app@sha256=${digest.slice(7)}`, 'signature-1'));
    const altered = Buffer.from(good);
    altered[altered.length - 40] ^= 0xff;
    await writeFile(join(dir, 'signature-2'), altered);
    await refused(`${reg.host}/crafted/app:1`, /signature-1: it signs manifest .*; signature-2: /);
  });

  test('signedBy refuses a signature whose identity is another image', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg')) });
    await refused(`${reg.host}/renamed/app:1`, new RegExp(`signature-1: it is signed for ${reg.host.replace(/[.]/g, '\\.')}/signed/app:1, which signedIdentity matchRepoDigestOrExact does not accept for ${reg.host.replace(/[.]/g, '\\.')}/renamed/app:1`));
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg'), { type: 'matchRepository' }) });
    await refused(`${reg.host}/renamed/app:1`, /which signedIdentity matchRepository does not accept/);
  });

  test('signedBy: an image signed by the policy key is installed (file:// lookaside, then http://, keyData, keyPaths)', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [`${reg.host}/signed`]: signedBy(join(work, 'signer.gpg')) });
    await accepted(`${reg.host}/signed/app:1`);
    await usePolicy({ [`${reg.host}/overhttp`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: Buffer.from(await readFile(join(work, 'signer.asc'))).toString('base64') }] });
    await accepted(`${reg.host}/overhttp/app:1`);
    // Pinned by digest: matchRepoDigestOrExact accepts a signature of that repository.
    await usePolicy({ [`${reg.host}/signed`]: signedBy(join(work, 'signer.gpg')) });
    await accepted(`${reg.host}/signed/app@${digest}`);
    // Signed by the other key: passes under a policy that trusts both keys (keyPaths).
    await usePolicy({ [reg.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPaths: [join(work, 'signer.gpg'), join(work, 'other.gpg')] }] });
    await accepted(`${reg.host}/otherkey/app:1`);
  });

  test('a signature whose identity is another image: remapIdentity and exactRepository accept it', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg'), { type: 'remapIdentity', prefix: `${reg.host}/renamed`, signedPrefix: `${reg.host}/signed` }) });
    await accepted(`${reg.host}/renamed/app:1`);
    await usePolicy({ [reg.host]: signedBy(join(work, 'signer.gpg'), { type: 'exactRepository', dockerRepository: `${reg.host}/signed/app` }) });
    await accepted(`${reg.host}/renamed/app:1`);
  });


  test('a rewritten location: scopes and identities speak of the logical name, the lookaside of the registry it came from', async (t) => {
    if (!requireRoot(t)) return;
    const regconf = join(conf, 'registries.conf');
    const saved = await readFile(regconf, 'utf8');
    try {
      await writeFile(regconf, `${saved}\n[[registry]]\nprefix = "policy.example/apps"\nlocation = "${reg.host}/signed"\ninsecure = true\n`);
      // A scope of the registry it really comes from does not apply: the logical name's does (here the default).
      await usePolicy({ [reg.host]: [{ type: 'insecureAcceptAnything' }] });
      const r = await f.cli('container', 'install', '--name', 'logical', 'policy.example/apps/app:1');
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /refused policy\.example\/apps\/app:1: .*policy\.json: default: rejected/);
      // The signature names the registry's own name: refused as an identity mismatch, accepted once remapped.
      await usePolicy({ 'policy.example': signedBy(join(work, 'signer.gpg')) });
      await refused('policy.example/apps/app:1', /transports\.docker\["policy\.example"\]\[0\]: signedBy: .*it is signed for 127\.0\.0\.1:\d+\/signed\/app:1, which signedIdentity matchRepoDigestOrExact does not accept for policy\.example\/apps\/app:1/);
      await usePolicy({ 'policy.example': signedBy(join(work, 'signer.gpg'), { type: 'remapIdentity', prefix: 'policy.example/apps', signedPrefix: `${reg.host}/signed` }) });
      await accepted('policy.example/apps/app:1');
    } finally {
      await writeFile(regconf, saved);
    }
  });

  test('insecureAcceptAnything accepts an unsigned image; a missing or unusable key file is a refusal that names it', async (t) => {
    if (!requireRoot(t)) return;
    await usePolicy({ [`${reg.host}/unsigned`]: [{ type: 'insecureAcceptAnything' }] });
    await accepted(`${reg.host}/unsigned/app:1`);
    await usePolicy({ [reg.host]: signedBy('/nonexistent/policy-key.gpg') });
    await refused(`${reg.host}/signed/app:1`, /signedBy: key file \/nonexistent\/policy-key\.gpg cannot be read/);
    await writeFile(join(work, 'garbage.gpg'), 'not a key\n');
    await usePolicy({ [reg.host]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPaths: [join(work, 'signer.gpg'), join(work, 'garbage.gpg')] }] });
    await refused(`${reg.host}/signed/app:1`, new RegExp(`signedBy: no OpenPGP public key could be imported from ${join(work, 'garbage.gpg').replace(/[.]/g, '\\.')}`));
  });

  test('the top-level default applies when no docker scope matches; a malformed policy.json stops the pull naming its path', async (t) => {
    if (!requireRoot(t)) return;
    await writeFile(join(conf, 'policy.json'), JSON.stringify({ default: [{ type: 'reject' }] }));
    const r = await f.cli('container', 'install', '--name', 'dflt', `${reg.host}/unsigned/app:1`);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /policy\.json: default: rejected/);
    await writeFile(join(conf, 'policy.json'), '{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"x.io": [{"type": "signedBy"}]}}}');
    const m = await f.cli('container', 'install', '--name', 'malformed', `${reg.host}/unsigned/app:1`);
    assert.notEqual(m.exitCode, 0);
    assert.match(m.stderr, /policy\.json: transports\.docker\["x\.io"\]\[0\]\.keyType: is missing/);
  });
});
