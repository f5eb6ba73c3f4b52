// Draws progress events on a terminal (a bar for downloads, a line per task); prints
// nothing when stderr is not a TTY or --json is set. --progress-json writes them as
// JSON Lines to stderr instead, for tools that follow an update.
import type { ProgressEvent, ProgressSink } from '../core/progress.js';

export function progressView(opts: { json: boolean; jsonLines: boolean }): { sink: ProgressSink; done(): void } {
  const out = process.stderr;
  if (opts.jsonLines) {
    return { sink: (e) => out.write(`${JSON.stringify({ v: 1, time: new Date().toISOString(), ...e })}\n`), done: () => {} };
  }
  if (opts.json || !out.isTTY) return { sink: () => {}, done: () => {} };
  let barShown = false;
  const clearBar = () => {
    if (barShown) out.write('\r\x1b[K');
    barShown = false;
  };
  const sink = (e: ProgressEvent) => {
    switch (e.type) {
      case 'task-begin':
        clearBar();
        out.write(`${e.task}...\n`);
        break;
      case 'task-end':
        clearBar();
        break;
      case 'message':
        clearBar();
        out.write(`${e.text}\n`);
        break;
      case 'percent':
        out.write(`\r\x1b[K${bar(e.percent)} ${e.text}`);
        barShown = true;
        break;
      case 'download': {
        const pct = e.requested > 0 ? Math.floor((100 * e.fetched) / e.requested) : 0;
        out.write(`\r\x1b[K${bar(pct)} ${e.fetched}/${e.requested} objects, ${formatBytes(e.bytes)}`);
        barShown = true;
        break;
      }
    }
  };
  return { sink, done: clearBar };
}

function bar(percent: number, width = 30): string {
  const p = Math.max(0, Math.min(100, percent));
  const filled = Math.round((p / 100) * width);
  return `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(p).padStart(3)}%`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
