// The one place where values from users, images and D-Bus callers are checked before they
// reach a unit file, a template, a JSON config, a tmpfiles line or a kernel argument. A
// newline in any of them could add a line that root runs (ExecStartPre=, a tmpfiles
// entry), a space in a kernel argument could add another one: each is refused, naming
// the field, or escaped for the syntax it lands in.
import { InvalidArgumentError } from './errors.js';
import type { HealthProbe } from './revision.js';
import { STACK_ROLES } from './stack-manifest.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const VAR_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_VALUE = 64 * 1024;

export function checkRole(role: string | undefined, field = 'role'): void {
  if (role === undefined || role === '') return;
  if (!(STACK_ROLES as readonly string[]).includes(role)) throw new InvalidArgumentError(`invalid ${field} ${JSON.stringify(role)}: one of ${STACK_ROLES.join(', ')}`, { field, value: role });
}

/** A value that goes into a line-based file (unit, tmpfiles): one line, no control characters. */
export function checkLineValue(field: string, value: string): void {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string`, { field });
  if (value.length > MAX_VALUE) throw new InvalidArgumentError(`${field} is longer than ${MAX_VALUE} characters`, { field });
  if (CONTROL.test(value)) throw new InvalidArgumentError(`${field} must not contain a newline or other control character: ${JSON.stringify(value.slice(0, 80))}`, { field });
}

/** --set NAME=VALUE pairs: names as shell/template variables, values bounded in size. */
export function checkValues(values: Record<string, unknown>, field = 'set'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) {
    if (!VAR_RE.test(k)) throw new InvalidArgumentError(`--${field} ${JSON.stringify(k)}: a name is letters, digits and _ (not starting with a digit)`, { field, name: k });
    if (typeof v !== 'string') throw new InvalidArgumentError(`--${field} ${k}: the value must be a string`, { field, name: k });
    if (v.length > MAX_VALUE) throw new InvalidArgumentError(`--${field} ${k}: longer than ${MAX_VALUE} characters`, { field, name: k });
    out[k] = v;
  }
  return out;
}

/** One kernel argument: no whitespace outside double quotes, no control characters. */
export function checkKarg(field: string, arg: string): void {
  if (typeof arg !== 'string' || !arg || CONTROL.test(arg) || /\s/.test(arg.replace(/"[^"\n]*"/g, '""')) || (arg.split('"').length - 1) % 2 !== 0) {
    throw new InvalidArgumentError(`not a kernel argument: ${JSON.stringify(arg)} (no spaces outside double quotes, no newlines)`, { field, value: arg });
  }
}

/** A health probe from a CLI flag, a manifest or a D-Bus caller. */
export function checkProbe(probe: unknown, field = 'probe'): HealthProbe {
  const p = probe as { http?: unknown; command?: unknown } | null;
  if (p && typeof p.http === 'string') {
    let url: URL;
    try {
      url = new URL(p.http);
    } catch {
      throw new InvalidArgumentError(`${field}: not a URL: ${JSON.stringify(p.http)}`, { field });
    }
    if (!/^https?:$/.test(url.protocol) || CONTROL.test(p.http) || /\s/.test(p.http)) throw new InvalidArgumentError(`${field}: an http(s) URL without spaces, not ${JSON.stringify(p.http)}`, { field });
    return { http: p.http };
  }
  if (p && Array.isArray(p.command) && p.command.length > 0 && p.command.length <= 64 && p.command.every((a) => typeof a === 'string' && a.length <= 4096 && !a.includes('\u0000'))) {
    if (!p.command[0]) throw new InvalidArgumentError(`${field}: the command's program is empty`, { field });
    return { command: p.command as string[] };
  }
  throw new InvalidArgumentError(`${field} must be { http: "http(s)://…" } or { command: [program, args…] } (strings)`, { field });
}

export type TemplateSyntax = 'json' | 'unit' | 'lines';

/**
 * Renders an Atomic template ($VAR, ${VAR}, $$, as Python's string.Template) with every
 * value checked or escaped for where it lands:
 * - json: inside a JSON string literal a value is escaped as JSON string content; outside
 *   one it stands for a raw JSON fragment (etcd's $ADDTL_MOUNTS), which only a caller who
 *   may change the host can give, and the result must still parse;
 * - unit: one line, no control characters; `%` is doubled so systemd does not expand it;
 * - lines (tmpfiles): one line, no control characters.
 */
export function renderTemplate(text: string, values: Record<string, string>, file: string, syntax: TemplateSyntax = 'lines'): string {
  const missing = new Set<string>();
  let out = '';
  let last = 0;
  let inString = false;
  let scanned = 0;
  const re = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (syntax === 'json') {
      // Track whether this $ stands inside a JSON string literal of the template.
      for (; scanned < m.index; scanned++) {
        if (text[scanned] === '\\' && inString) scanned++;
        else if (text[scanned] === '"') inString = !inString;
      }
    }
    out += text.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[1]) {
      out += '$';
      continue;
    }
    const key = m[2] ?? m[3];
    if (!(key in values)) {
      missing.add(key);
      continue;
    }
    const v = values[key];
    if (syntax === 'json') out += inString ? JSON.stringify(v).slice(1, -1) : v;
    else {
      checkLineValue(`${file}: $${key}`, v);
      out += syntax === 'unit' ? v.replaceAll('%', '%%') : v;
    }
  }
  out += text.slice(last);
  if (missing.size) throw new InvalidArgumentError(`${file}: no value for ${[...missing].map((k) => `$${k}`).join(', ')} (give it with --set ${[...missing][0]}=VALUE)`, { file, variables: [...missing] });
  if (syntax === 'json') {
    try {
      JSON.parse(out);
    } catch (err) {
      throw new InvalidArgumentError(`${file}: the rendered config is not JSON (${(err as Error).message}); check the values that stand for JSON fragments`, { file });
    }
  }
  return out;
}
