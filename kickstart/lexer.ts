// Splitting a kickstart command line into words, as pykickstart does with shlex in POSIX
// mode: whitespace separates, '…' is literal, "…" honours \" and \\, a backslash outside
// quotes escapes the next character, and # starts a comment at the start of a word.

export type TokenizeResult = { ok: true; tokens: string[] } | { ok: false; message: string };

export function tokenize(line: string): TokenizeResult {
  const tokens: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inWord) tokens.push(cur);
      cur = '';
      inWord = false;
      i++;
      continue;
    }
    if (c === '#' && !inWord) break;
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { ok: false, message: 'no closing quotation (\')' };
      cur += line.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      let closed = false;
      while (i < line.length) {
        const d = line[i];
        if (d === '\\' && i + 1 < line.length && (line[i + 1] === '"' || line[i + 1] === '\\' || line[i + 1] === '$' || line[i + 1] === '`')) {
          cur += line[i + 1];
          i += 2;
          continue;
        }
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        cur += d;
        i++;
      }
      if (!closed) return { ok: false, message: 'no closing quotation (")' };
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= line.length) return { ok: false, message: 'no escaped character after the final backslash' };
      cur += line[i + 1];
      i += 2;
      continue;
    }
    cur += c;
    i++;
  }
  if (inWord) tokens.push(cur);
  return { ok: true, tokens };
}

/** True when a command line continues on the next one: an odd run of trailing backslashes. */
export function continues(line: string): boolean {
  const m = /(\\+)[ \t]*$/.exec(line.replace(/\r$/, ''));
  return m !== null && m[1].length % 2 === 1 && !/^\s*#/.test(line);
}

/** The line without its continuation backslash. */
export function stripContinuation(line: string): string {
  return line.replace(/\r$/, '').replace(/\\[ \t]*$/, '');
}
