// Structured journald entries with stable MESSAGE_IDs (docs/daemon.md lists them), so
// `journalctl MESSAGE_ID=…` finds every transaction. Values are ours only: no secret,
// no registry credential, is ever passed here.
import { createRequire } from 'node:module';

export const MESSAGE_IDS = {
  started: '6b1c2f0e8a2d4c7e9f3a5b7d9e1f2a3b',
  transactionStarted: '7c2d3e4f5a6b4c8d9e0f1a2b3c4d5e6f',
  transactionSucceeded: '8d3e4f5a6b7c4d9e8f0a1b2c3d4e5f60',
  transactionFailed: '9e4f5a6b7c8d4e0f9a1b2c3d4e5f6071',
  recovered: 'af5a6b7c8d9e4f1a8b2c3d4e5f607182',
  healthPassed: 'b06b7c8d9e0f4a2b9c3d4e5f60718293',
  autoRollback: 'c17c8d9e0f1a4b3c8d4e5f6071829304',
  reconciled: 'd28d9e0f1a2b4c4d9e5f607182930415',
  unitFailed: 'e39e0f1a2b3c4d5e8f60718293041526',
  restartLoop: 'f4af1a2b3c4d4e6f9071829304152637',
  unitRecovered: '05b02b3c4d5e4f708182930415263748',
  updateState: '16c13c4d5e6f4a819293a4152637485a',
  updateReboot: '27d24d5e6f704b92a3a4b5263748596b',
  updateHookFailed: '38e35e6f70814ca3b4b5c6374859607c',
  containerRestored: '49f46f70819254b4c5c6d748596a718d',
} as const;

type Fields = Record<string, string | number | undefined>;
interface JournaldModule {
  info(msg: string, fields?: Record<string, unknown>): void;
  err(msg: string, fields?: Record<string, unknown>): void;
  warning(msg: string, fields?: Record<string, unknown>): void;
}

let journald: JournaldModule | null | undefined;

function sink(): JournaldModule | null {
  if (journald === undefined) {
    try {
      journald = createRequire(import.meta.url)('systemd-journald') as JournaldModule;
    } catch {
      journald = null; // no libsystemd binding: stderr only
    }
  }
  return journald;
}

export function log(level: 'info' | 'err' | 'warning', id: keyof typeof MESSAGE_IDS, message: string, fields: Fields = {}): void {
  const clean = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
  const j = sink();
  if (j) j[level](message, { MESSAGE_ID: MESSAGE_IDS[id], SYSLOG_IDENTIFIER: 'atomhostd', ...clean });
  else process.stderr.write(`atomhostd: ${message}\n`);
}
