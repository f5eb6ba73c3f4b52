// Capability gates: a test that needs root (mounts, loop devices, namespaces) skips
// outside CI with the reason printed, and fails under CI=true, where it must run.
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';

export const inCI = process.env.CI === 'true';

/** Returns true when the test may go on; otherwise skips it (or throws under CI). */
export function requireRoot(t: TestContext, why = 'mounts a tmpfs for the test sysroot'): boolean {
  if (process.getuid?.() === 0) return true;
  const reason = `needs root: ${why}`;
  if (inCI) throw new Error(`${reason} (CI=true: this capability must be present)`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return false;
}

/** Same gate for a missing command. */
export async function requireCommand(t: TestContext, cmd: string): Promise<boolean> {
  const { execa } = await import('execa');
  const ok = await execa('sh', ['-c', `command -v ${cmd}`], { reject: false }).then((r) => r.exitCode === 0);
  if (ok) return true;
  const reason = `needs ${cmd} (installed by npm run setup)`;
  if (inCI) throw new Error(`${reason} (CI=true: this capability must be present)`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return false;
}

/** Same gate for a file a package of the set-up provides. */
export function requireFile(t: TestContext, path: string, why: string): boolean {
  if (existsSync(path)) return true;
  const reason = `needs ${path} (${why})`;
  if (inCI) throw new Error(`${reason} (CI=true: this capability must be present)`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return false;
}

/**
 * A test that goes on from an earlier one's result (the booted VM): when that is missing
 * the earlier test already failed or skipped; under CI this one fails too, not skips.
 */
export function requireEarlier(t: TestContext, ready: unknown, what: string): boolean {
  if (ready) return true;
  if (inCI) throw new Error(`${what} (CI=true: the earlier test's failure says why)`);
  console.log(`# skipped: ${what}`);
  t.skip(what);
  return false;
}
