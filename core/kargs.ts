// Kernel-argument edits with rpm-ostree's semantics: --append KEY[=VALUE] adds,
// --delete KEY[=VALUE] removes (a bare KEY only when it names one argument),
// --replace KEY=OLD=NEW or KEY=NEW changes a value.
import { InvalidArgumentError } from './errors.js';
import type { KargsEdit } from './host-api.js';
import { checkKarg } from './values.js';

const keyOf = (arg: string) => arg.split('=')[0];

export function editKargs(current: string[], edit: KargsEdit): string[] {
  let out = [...current];
  for (const [field, list] of [['append', edit.append], ['delete', edit.delete], ['replace', edit.replace]] as const) for (const a of list ?? []) checkKarg(field, a);
  for (const d of edit.delete ?? []) {
    const matches = d.includes('=') ? out.filter((a) => a === d) : out.filter((a) => keyOf(a) === d);
    if (matches.length === 0) throw new InvalidArgumentError(`kernel argument ${d} is not set`, { field: 'delete', value: d });
    if (!d.includes('=') && matches.length > 1) throw new InvalidArgumentError(`${d} is set ${matches.length} times (${matches.join(' ')}); say which with --delete ${d}=VALUE`, { field: 'delete', value: d });
    const i = out.indexOf(matches[0]);
    out.splice(i, 1);
  }
  for (const r of edit.replace ?? []) {
    const parts = r.split('=');
    if (parts.length < 2 || !parts[0]) throw new InvalidArgumentError(`--replace wants KEY=VALUE or KEY=OLD=NEW, got ${r}`, { field: 'replace', value: r });
    const key = parts[0];
    const [oldVal, newVal] = parts.length >= 3 ? [parts[1], parts.slice(2).join('=')] : [undefined, parts[1]];
    const idx = out.findIndex((a) => keyOf(a) === key && (oldVal === undefined || a === `${key}=${oldVal}`));
    if (idx < 0) throw new InvalidArgumentError(`kernel argument ${oldVal === undefined ? key : `${key}=${oldVal}`} is not set; nothing to replace`, { field: 'replace', value: r });
    out[idx] = `${key}=${newVal}`;
  }
  for (const a of edit.append ?? []) {
    if (!a || /\s/.test(a)) throw new InvalidArgumentError(`not a kernel argument: ${JSON.stringify(a)}`, { field: 'append', value: a });
    out = [...out, a];
  }
  return out;
}

/**
 * A stack manifest's kernel arguments edit the deployment's, never replace them: each of
 * `kargs` is made present (a KEY=VALUE replaces the value of the same key, a bare KEY is
 * added once), each of `kargsDelete` removed. What the installer or the admin set —
 * root=, rd.*, console=, rw — stays unless the manifest deletes it by name.
 */
export function stackKargs(current: string[], os: { kargs?: string[]; kargsDelete?: string[] }): string[] {
  let out = [...current];
  for (const d of os.kargsDelete ?? []) out = out.filter((a) => a !== d && keyOf(a) !== d);
  for (const a of os.kargs ?? []) {
    const i = out.findIndex((x) => keyOf(x) === keyOf(a));
    if (out.includes(a)) continue;
    if (i >= 0 && a.includes('=')) out[i] = a;
    else out.push(a);
  }
  return out;
}
