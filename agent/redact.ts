// What a caller who may not change the host sees: what `systemctl status` shows a
// non-root user, no more. Container values (--set, which may hold tokens), probe commands
// and URLs, journal lines and check output, and failure reasons that quote them are
// replaced by a marker; names, images, digests, states and versions stay.
export const HIDDEN = '(hidden: ask as root)';

const HIDE = new Set(['probe', 'output', 'reason', 'journal', 'lines', 'stdout', 'stderr', 'details']);

export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'values' && v && typeof v === 'object' && !Array.isArray(v)) out[k] = Object.fromEntries(Object.keys(v).map((n) => [n, HIDDEN]));
    else if (HIDE.has(k) && v !== null && v !== undefined) out[k] = Array.isArray(v) ? [] : HIDDEN;
    else out[k] = redact(v);
  }
  return out;
}

/** A JSON text, redacted (a text that is not JSON — an error's message — is hidden whole). */
export function redactJson(text: string): string {
  try {
    return JSON.stringify(redact(JSON.parse(text)));
  } catch {
    return JSON.stringify(HIDDEN);
  }
}

/** An encoded error for everyone: its code and what failed, not the text that may quote values or logs. */
export function redactError(text: string): string {
  try {
    const j = JSON.parse(text) as { code?: string; message?: string };
    const what = (j.message ?? '').split('\n')[0].split(':')[0];
    return JSON.stringify({ code: j.code ?? 'AH_ERR_FAILED', message: `${what}: ${HIDDEN}` });
  } catch {
    return JSON.stringify({ code: 'AH_ERR_FAILED', message: HIDDEN });
  }
}
