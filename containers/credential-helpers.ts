// The docker-credential-helpers protocol, as containers/image speaks it for registries.conf
// `credential-helpers` and auth.json `credHelpers`/`credsStore`: the program
// docker-credential-NAME (looked up on PATH) is run as `docker-credential-NAME get` with the
// registry host on stdin and answers {"ServerURL", "Username", "Secret"} on stdout;
// "credentials not found" (exit 1) means the next source is asked. The secret is held in
// memory only: it never goes into an error, a log line or a revision.
import { execFile } from 'node:child_process';
import { AtomhostError } from '../core/errors.js';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages (an auth file's path or a helper's name; never the secret). */
  source: string;
}

const HELPER_TIMEOUT_MS = Number(process.env.ATOMHOST_CREDENTIAL_HELPER_TIMEOUT_MS ?? 30_000);
const MAX_OUTPUT_BYTES = 1024 * 1024;
/** What docker-credential-helpers prints for ErrCredentialsNotFound (containers/image matches it the same way). */
const NOT_FOUND = 'credentials not found in native keychain';

export class CredentialHelperError extends AtomhostError {
  constructor(helper: string, registry: string, why: string, origin: string) {
    super('AH_ERR_REGISTRY', `credential helper "${helper}" (docker-credential-${helper}, ${origin}) for ${registry}: ${why}`, { details: { helper, registry, origin } });
    this.name = 'CredentialHelperError';
  }
}

export const helperProgram = (helper: string): string => `docker-credential-${helper}`;

/** First line of a helper's message, bounded (a helper's error text is shown, never its stdout on success). */
const short = (s: string) => {
  const line = s.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
};

/**
 * Asks one helper for `registry`'s credentials: null when it has none; a missing program, a
 * failure, a timeout or an answer that is not the protocol's JSON throws naming the helper.
 */
export function helperGet(helper: string, registry: string, origin: string): Promise<Credentials | null> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) return Promise.reject(new CredentialHelperError(helper, registry, 'is not a helper name', origin));
  const program = helperProgram(helper);
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new CredentialHelperError(helper, registry, why, origin));
    const child = execFile(program, ['get'], { timeout: HELPER_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: string | number };
        if (e.code === 'ENOENT') return fail(`${program} is not installed (not found on PATH)`);
        if (e.code === 'EACCES') return fail(`${program} cannot be run (permission denied)`);
        if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return fail(`answered more than ${MAX_OUTPUT_BYTES} bytes`);
        if (e.killed || e.signal) return fail(e.killed ? `did not answer within ${HELPER_TIMEOUT_MS / 1000} s` : `was killed by ${e.signal}`);
        // The protocol puts its error text on stdout; "not found" is not an error.
        if (stdout.trim() === NOT_FOUND || stdout.includes(NOT_FOUND)) return resolve(null);
        return fail(`failed (exit ${e.code}): ${short(stdout) || short(stderr) || 'no message'}`);
      }
      let doc: unknown;
      try {
        doc = JSON.parse(stdout);
      } catch {
        // Never echo the output: it may hold the secret.
        return fail('answered something that is not the protocol\'s JSON {"ServerURL", "Username", "Secret"}');
      }
      const d = doc as Record<string, unknown> | null;
      if (!d || typeof d !== 'object' || Array.isArray(d) || typeof d.Username !== 'string' || typeof d.Secret !== 'string') return fail('answered JSON without string Username and Secret');
      if (!d.Username && !d.Secret) return resolve(null);
      if (d.Username === '<token>') return fail('answered an identity token (Username "<token>"), which atomhost does not support; store a username and password or token for the registry instead');
      if (!d.Username || !d.Secret || /[\r\n]/.test(d.Username) || /[\r\n]/.test(d.Secret)) return fail('answered an empty or multi-line Username or Secret');
      resolve({ username: d.Username, password: d.Secret, source: `credential helper "${helper}"` });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(registry);
  });
}
