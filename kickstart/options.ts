// A small argparse for kickstart commands: --opt=value and --opt value, flags, aliases,
// choices, comma lists; every problem is collected, none stops the others.
import type { ProblemKind } from './errors.js';

export type OptType = 'flag' | 'string' | 'int' | 'bool' | 'list';

export interface OptSpec {
  /** Spellings, the first being the canonical one (e.g. ['--enabled', '--enable']). */
  names: string[];
  type: OptType;
  dest: string;
  choices?: readonly string[];
  /** For flags that share a dest (selinux --enforcing|--permissive): the value they store. */
  const?: string;
  /** An empty value is kept (pykickstart takes `--passphrase=` and `--ntpservers=`). */
  allowEmpty?: boolean;
  /** pykickstart removed the option from this version on (unknown there and after). */
  removedIn?: string;
  /** pykickstart deprecates the option from this version on (a warning there and after). */
  deprecatedIn?: string;
}

export interface OptValue {
  value: string | number | boolean | string[];
  /** The option as written in the file (for messages). */
  written: string;
}

export interface ParsedArgs {
  opts: Map<string, OptValue>;
  /** Flags sharing a dest, in the order given (to report conflicts). */
  constSeen: Map<string, string[]>;
  args: string[];
}

export type Report = (kind: ProblemKind, message: string, option?: string) => void;

const KS_TRUE = new Set(['on', 'yes', 'true', '1']);
const KS_FALSE = new Set(['off', 'no', 'false', '0']);

export function parseBool(v: string): boolean | null {
  const l = v.toLowerCase();
  if (KS_TRUE.has(l)) return true;
  if (KS_FALSE.has(l)) return false;
  return null;
}

export function parseOptions(tokens: string[], specs: OptSpec[], report: Report): ParsedArgs {
  const byName = new Map<string, OptSpec>();
  for (const s of specs) for (const n of s.names) byName.set(n, s);
  const out: ParsedArgs = { opts: new Map(), constSeen: new Map(), args: [] };
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    if (!tok.startsWith('-') || tok === '-' || /^-\d/.test(tok)) {
      out.args.push(tok);
      continue;
    }
    const eq = tok.indexOf('=');
    const name = eq >= 0 ? tok.slice(0, eq) : tok;
    let value: string | undefined = eq >= 0 ? tok.slice(eq + 1) : undefined;
    const spec = byName.get(name);
    if (!spec) {
      const guess = closest(name, [...byName.keys()]);
      report('unknown-option', `unknown option${guess ? ` (did you mean ${guess}?)` : ''}`, name);
      continue;
    }
    if (spec.type === 'flag') {
      if (value !== undefined) {
        report('unexpected-argument', `takes no value (got ${JSON.stringify(value)})`, name);
        continue;
      }
      if (spec.const !== undefined) {
        out.opts.set(spec.dest, { value: spec.const, written: name });
        out.constSeen.set(spec.dest, [...(out.constSeen.get(spec.dest) ?? []), name]);
      } else out.opts.set(spec.dest, { value: true, written: name });
      continue;
    }
    if (value === undefined) {
      const next = tokens[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        report('missing-value', 'needs a value', name);
        continue;
      }
      value = next;
      i++;
    }
    if (spec.choices && spec.type !== 'list' && !spec.choices.includes(value)) {
      report('bad-value', `invalid choice ${JSON.stringify(value)} (choose from ${spec.choices.join(', ')})`, name);
      continue;
    }
    switch (spec.type) {
      case 'string':
        if (value === '' && !spec.allowEmpty) report('missing-value', 'needs a non-empty value', name);
        else out.opts.set(spec.dest, { value, written: name });
        break;
      case 'int': {
        if (!/^-?\d+$/.test(value)) {
          report('bad-value', `expected an integer, got ${JSON.stringify(value)}`, name);
          break;
        }
        out.opts.set(spec.dest, { value: Number(value), written: name });
        break;
      }
      case 'bool': {
        const b = parseBool(value);
        if (b === null) report('bad-value', `expected a boolean (yes/no, on/off, true/false, 1/0), got ${JSON.stringify(value)}`, name);
        else out.opts.set(spec.dest, { value: b, written: name });
        break;
      }
      case 'list': {
        const items = value.split(',').map((s) => s.trim()).filter(Boolean);
        if (items.length === 0 && !spec.allowEmpty) {
          report('missing-value', 'needs at least one value', name);
          break;
        }
        if (spec.choices) {
          const bad = items.filter((x) => !spec.choices!.includes(x));
          if (bad.length) {
            report('bad-value', `invalid choice ${bad.join(', ')} (choose from ${spec.choices.join(', ')})`, name);
            break;
          }
        }
        const prev = out.opts.get(spec.dest)?.value;
        out.opts.set(spec.dest, { value: [...(Array.isArray(prev) ? prev : []), ...items], written: name });
        break;
      }
    }
  }
  return out;
}

function closest(name: string, known: string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return dp[a.length][b.length];
}
