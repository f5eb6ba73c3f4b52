// Fuzzing registries.conf reading: a rich valid file (and Debian's shortnames.conf when
// present) cut, spliced and mutated at random (seeded, FUZZ_SEED / FUZZ_SECONDS). Invariant:
// reading never throws anything but a RegistriesConfError naming the file and a line; a
// file that is accepted resolves names to references that parse again, with no "..", no
// whitespace and a registry host, or refuses them with a typed error.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { AtomhostError } from '../../core/errors.js';
import { findRegistry, parseRegistriesFile, pullSources, RegistriesConfError, type RegistriesConf } from '../../containers/registries-conf.js';
import { resolveName } from '../../containers/short-names.js';
import { formatReference, parseReference } from '../../containers/reference.js';
import { rng } from '../helpers/fuzz.js';

const VALID = `unqualified-search-registries = ["quay.io", "docker.io", "127.0.0.1:5000"]
short-name-mode = "permissive"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar"
insecure = false
blocked = false

[[registry.mirror]]
location = "mirror-0.local/mirror-for-foo"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "mirror-1.local:5000/mirrors/foo"
insecure = true

[[registry]]
prefix = "*.corp.example"
insecure = true

[[registry]]
location = "blocked.example.com"
blocked = true

[aliases]
"tool" = "registry.example.com/team/tool"
"busybox" = "docker.io/library/busybox"
`;
const JUNK = ['"', "'", '\\', '[', ']', '[[', ']]', '=', ' ', '\n', '#', '\t', '\u0000', 'é', '..', '../', '*', '*.', '/', ':', '@', 'sha256:', 'http://', 'true', '1e9', '{', '}', ',', 'registry', 'registries.search', 'mirror', 'aliases', '"__proto__"', 'prefix', 'location', '"""'];
const NAMES = ['tool', 'tool:1', 'busybox', 'example.com/foo/app:1', `example.com/foo/app@sha256:${'0'.repeat(64)}`, 'a.corp.example/x', 'blocked.example.com/x', 'docker.io/busybox', 'team/app', 'quay.io/x/y:z'];

test('mutated registries.conf files never crash the reader; every error names the file and a line', { timeout: 120_000 }, () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const seconds = Number(process.env.FUZZ_SECONDS ?? 3);
  console.log(`# registries.conf fuzz: FUZZ_SEED=${seed} FUZZ_SECONDS=${seconds}`);
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  const corpus = [VALID];
  const debian = '/etc/containers/registries.conf.d/shortnames.conf';
  if (existsSync(debian)) corpus.push(readFileSync(debian, 'utf8'));
  const FILE = '/etc/containers/registries.conf.d/50-fuzz.conf';
  let runs = 0;
  let accepted = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    let text = pick(corpus);
    for (let k = 1 + Math.floor(r() * 4); k > 0; k--) {
      const at = Math.floor(r() * text.length);
      const op = r();
      if (op < 0.5) text = text.slice(0, at) + pick(JUNK) + text.slice(at);
      else if (op < 0.75) text = text.slice(0, at) + text.slice(at + Math.floor(r() * 40));
      else {
        const other = pick(corpus);
        const from = Math.floor(r() * other.length);
        text = text.slice(0, at) + other.slice(from, from + Math.floor(r() * 200)) + text.slice(at);
      }
    }
    runs++;
    let parsed;
    try {
      parsed = parseRegistriesFile(FILE, text);
    } catch (err) {
      assert.ok(err instanceof RegistriesConfError, `seed ${seed}: not a RegistriesConfError: ${(err as Error).stack}\n--- input:\n${text}`);
      assert.match(err.message, /^\/etc\/containers\/registries\.conf\.d\/50-fuzz\.conf:\d+(:\d+)?: /, `seed ${seed}: ${err.message}`);
      continue;
    }
    accepted++;
    const conf: RegistriesConf = {
      files: [FILE],
      registries: parsed.registries,
      search: parsed.search ?? { registries: [], origin: null },
      shortNameMode: parsed.shortNameMode ?? { mode: 'enforcing', origin: null },
      aliases: new Map([...parsed.aliases].filter(([, v]) => v.value !== '')),
    };
    for (const name of NAMES) {
      try {
        for (const c of resolveName(conf, name).candidates) {
          findRegistry(conf, formatReference(c));
          for (const s of pullSources(conf, c).sources) {
            const text2 = formatReference(s.reference);
            assert.ok(!/\s|(^|\/)\.\.(\/|$|:|@)/.test(text2), `seed ${seed}: ${name} → ${text2}`);
            assert.deepEqual(parseReference(text2, { qualified: true }), s.reference, `seed ${seed}: ${name} → ${text2} does not parse back`);
          }
        }
      } catch (err) {
        assert.ok(err instanceof AtomhostError, `seed ${seed}: ${name}: not a typed error: ${(err as Error).stack}\n--- input:\n${text}`);
      }
    }
  }
  console.log(`# ${runs} files, ${accepted} accepted`);
  assert.ok(runs > 50);
});
