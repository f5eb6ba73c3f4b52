// Capability gates: a test that needs root (mounts, loop devices, namespaces) skips
// outside CI with the reason printed, and fails under CI=true, where it must run.
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
