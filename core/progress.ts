// Progress of a transaction as typed events: drawn by the CLI on a terminal, sent as
// D-Bus signals by the daemon, written as JSON Lines with --progress-json.

export type ProgressEvent =
  | { type: 'task-begin'; task: string }
  | { type: 'task-end'; task: string }
  | { type: 'message'; text: string }
  | { type: 'percent'; percent: number; text: string }
  | { type: 'download'; bytes: number; fetched: number; requested: number; status?: string };

export type ProgressSink = (event: ProgressEvent) => void;

export const noProgress: ProgressSink = () => {};

/** Runs fn between task-begin and task-end events. */
export async function task<T>(sink: ProgressSink, name: string, fn: () => Promise<T>): Promise<T> {
  sink({ type: 'task-begin', task: name });
  try {
    return await fn();
  } finally {
    sink({ type: 'task-end', task: name });
  }
}

/** Adapts libostree pull progress to download events. */
export function pullProgress(sink: ProgressSink) {
  return (p: { bytesTransferred: number; fetched: number; requested: number; status: string }) =>
    sink({ type: 'download', bytes: p.bytesTransferred, fetched: p.fetched, requested: p.requested, status: p.status });
}
