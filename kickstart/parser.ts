// The kickstart parser: sections (%pre, %post, %packages, ...), %include (loops found by
// device and inode, as rpm-ostree's kickstart.rs does), line continuation, then every
// command through its handler and the checks across commands. It reads files only through
// the reader it is given, so it is pure for the tests (memoryReader) and for validate.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { KickstartError, type KickstartProblem, type ProblemKind, type SourceRef } from './errors.js';
import { continues, stripContinuation, tokenize } from './lexer.js';
import { ALIASES, COMMANDS, INSTALLER_ONLY_COMMANDS, OTHER_ANACONDA_COMMANDS, makeCmd } from './commands.js';
import { commandState, defaultVersion, removedSince, type KsVersion } from './versions.js';
import { parseOptions, type OptSpec } from './options.js';
import { emptyKickstart, isHostnameOnly, type Kickstart, type ScriptSpec } from './types.js';
import { editDistance } from './options.js';

export interface KsFile {
  path: string;
  text: string;
  dev: number;
  ino: number;
}

export interface KsReader {
  /** The file, or null when it does not exist or cannot be read. */
  read(path: string): KsFile | null;
}

export const fsReader: KsReader = {
  read(path) {
    try {
      const st = statSync(path);
      if (!st.isFile()) return null;
      return { path, text: readFileSync(path, 'utf8'), dev: st.dev, ino: st.ino };
    } catch {
      return null;
    }
  },
};

/** Files held in memory (inode = position in the map), for tests and for stdin. */
export function memoryReader(files: Record<string, string>): KsReader {
  const names = Object.keys(files);
  return {
    read(path) {
      const i = names.indexOf(path);
      return i < 0 ? null : { path, text: files[path], dev: 0, ino: i + 1 };
    },
  };
}

export interface ParseOptions {
  /**
   * A missing %include is a warning rather than an error when the kickstart has %pre
   * scripts (which commonly write the included file): validate passes, apply re-parses
   * after running them.
   */
  lenientIncludes?: boolean;
  /** The kickstart syntax version to judge by (pykickstart's, like `ksvalidator -v`); default the newest. */
  version?: KsVersion;
  /**
   * The checks across commands that an atomic-host install needs (ostreesetup present, a
   * partitioning, LVM references). pykickstart leaves these to Anaconda at install time;
   * the parity tests turn them off to compare single commands. Default true.
   */
  installChecks?: boolean;
}

export interface ParseResult {
  ks: Kickstart;
  errors: KickstartProblem[];
}

const SECTIONS = ['%pre', '%post', '%packages', '%traceback', '%onerror', '%addon', '%anaconda', '%pre-install'] as const;
type Section = (typeof SECTIONS)[number];

const SCRIPT_OPTS: OptSpec[] = [
  { names: ['--interpreter'], type: 'string', dest: 'interpreter' },
  { names: ['--erroronfail'], type: 'flag', dest: 'erroronfail' },
  { names: ['--log', '--logfile'], type: 'string', dest: 'log' },
];
const POST_OPTS: OptSpec[] = [...SCRIPT_OPTS, { names: ['--nochroot'], type: 'flag', dest: 'nochroot' }];

export function parseKickstart(mainPath: string, reader: KsReader = fsReader, opts: ParseOptions = {}): ParseResult {
  const ks = emptyKickstart();
  const version = opts.version ?? defaultVersion();
  ks.version = version.name;
  const errors: KickstartProblem[] = [];
  const firstSeen = new Map<string, SourceRef>();
  const missingIncludes: KickstartProblem[] = [];

  const problem = (kind: ProblemKind, at: SourceRef, message: string, command?: string, option?: string): KickstartProblem => ({
    kind,
    file: at.file,
    line: at.line,
    ...(command !== undefined ? { command } : {}),
    ...(option !== undefined ? { option } : {}),
    message,
  });

  const main = reader.read(mainPath);
  if (!main) {
    errors.push(problem('include', { file: mainPath, line: 0 }, 'cannot read the kickstart file (missing or not a regular file)'));
    return { ks, errors };
  }

  const stack: { dev: number; ino: number; path: string }[] = [];

  const runCommand = (tokens: string[], at: SourceRef) => {
    const written = tokens[0];
    const name = ALIASES[written] ?? written;
    const def = COMMANDS[name];
    // Which commands exist depends on the version, as in pykickstart's handlers.
    const state = commandState(written === 'part' ? 'partition' : written, version);
    if (state === 'removed') {
      errors.push(problem('unknown-command', at, `${written} has been removed (since ${removedSince(written, version)}; judged as ${version.name})`, written));
      return;
    }
    if (state === 'absent' && (def || OTHER_ANACONDA_COMMANDS.has(name))) {
      errors.push(problem('unknown-command', at, `${written} is not a command in kickstart version ${version.name}`, written));
      return;
    }
    if (state === 'deprecated') ks.warnings.push(problem('bad-value', at, `${written} is deprecated in ${version.name} and has no effect`, written));
    if (!def) {
      if (INSTALLER_ONLY_COMMANDS.has(name)) {
        ks.warnings.push(problem('bad-value', at, 'an installer setting with no effect on an atomhost image: ignored (its options are not checked)', name));
      } else if (OTHER_ANACONDA_COMMANDS.has(name)) {
        ks.unsupported.push(problem('bad-value', at, `${name} is an Anaconda command outside the atomic-host subset that apply can do`, name));
      } else {
        const known = [...Object.keys(COMMANDS), ...Object.keys(ALIASES)];
        const guess = known.find((k) => editDistance(k, name) <= 2);
        errors.push(problem('unknown-command', at, `unknown command${guess ? ` (did you mean ${guess}?)` : ''}`, name));
      }
      return;
    }
    if (def.once) {
      // pykickstart parses a single command again: the later line wins.
      const prev = firstSeen.get(name);
      if (prev) ks.warnings.push(problem('duplicate', at, `given again (first at ${prev.file}:${prev.line}): this later one wins`, written));
      firstSeen.set(name, at);
    }
    const cmd = makeCmd(written, at, version, tokens.slice(1), def, {
      err: (kind, message, option) => errors.push(problem(kind, at, message, written, option)),
      warn: (message, option) => ks.warnings.push(problem('bad-value', at, message, written, option)),
      unsupported: (message, option) => ks.unsupported.push(problem('bad-value', at, message, written, option)),
    });
    if (cmd) def.handle(cmd, ks);
  };

  const readFile = (file: KsFile, includedAt: SourceRef | null) => {
    const key = stack.find((s) => s.dev === file.dev && s.ino === file.ino);
    if (key && includedAt) {
      const chain = [...stack.map((s) => s.path), file.path].join(' -> ');
      errors.push(problem('include', includedAt, `include loop: ${chain}`, '%include'));
      return;
    }
    stack.push({ dev: file.dev, ino: file.ino, path: file.path });
    if (!ks.files.includes(file.path)) ks.files.push(file.path);
    const lines = file.text.split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    let section: { name: Section; at: SourceRef; args: string[]; body: string[] } | null = null;

    for (let i = 0; i < lines.length; i++) {
      const at = { file: file.path, line: i + 1 };
      const raw = lines[i].replace(/\r$/, '');
      const trimmed = raw.trim();

      if (section) {
        if (trimmed === '%end' || /^%end\s*(#.*)?$/.test(trimmed)) {
          endSection(section);
          section = null;
          continue;
        }
        const head = trimmed.split(/\s+/)[0];
        if ((SECTIONS as readonly string[]).includes(head)) {
          errors.push(problem('section', section.at, `${section.name} does not end with %end before ${head} at line ${i + 1}`, section.name));
          endSection(section);
          section = null;
          // fall through: start the new section below
        } else {
          section.body.push(raw);
          continue;
        }
      }

      if (trimmed === '' || trimmed.startsWith('#')) continue;

      // Join continued lines (a trailing backslash), reporting the first line's number.
      let logical = raw;
      while (continues(logical) && i + 1 < lines.length) {
        logical = `${stripContinuation(logical)} ${lines[++i].replace(/\r$/, '')}`;
      }
      if (continues(logical)) {
        errors.push(problem('syntax', at, 'the line continues (ends with \\) past the end of the file'));
        logical = stripContinuation(logical);
      }
      const tk = tokenize(logical);
      if (!tk.ok) {
        errors.push(problem('syntax', at, tk.message));
        continue;
      }
      const tokens = tk.tokens;
      if (tokens.length === 0) continue;
      const head = tokens[0];

      if (head === '%include' || head === '%ksappend') {
        if (tokens.length !== 2) {
          errors.push(problem(tokens.length < 2 ? 'missing-value' : 'unexpected-argument', at, 'needs exactly one file name', head));
          continue;
        }
        if (head === '%ksappend') {
          // pykickstart's parser skips it: its pre-processor (ksflatten) fetches the file first.
          ks.warnings.push(problem('include', at, '%ksappend is a pre-processing directive: not read by atomhost (flatten the kickstart with ksflatten, or use %include)', head));
          continue;
        }
        const target = isAbsolute(tokens[1]) ? tokens[1] : resolve(dirname(file.path), tokens[1]);
        const inc = reader.read(target);
        if (!inc) {
          missingIncludes.push(problem('include', at, `cannot read ${target}`, '%include'));
          continue;
        }
        readFile(inc, at);
        continue;
      }
      if (head === '%end') {
        errors.push(problem('section', at, '%end without a section to end', '%end'));
        continue;
      }
      if (head.startsWith('%')) {
        if (!(SECTIONS as readonly string[]).includes(head)) {
          errors.push(problem('section', at, `unknown section (known: ${SECTIONS.join(', ')})`, head));
          // Skip its body up to %end so that its lines are not read as commands.
          while (i + 1 < lines.length && lines[i + 1].trim() !== '%end') i++;
          if (i + 1 < lines.length) i++;
          continue;
        }
        section = { name: head as Section, at, args: tokens.slice(1), body: [] };
        continue;
      }
      runCommand(tokens, at);
    }
    if (section) {
      errors.push(problem('section', section.at, `${section.name} does not end with %end (the file ends first)`, section.name));
      endSection(section);
    }
    stack.pop();
  };

  const endSection = (s: { name: Section; at: SourceRef; args: string[]; body: string[] }) => {
    const body = s.body.length ? `${s.body.join('\n')}\n` : '';
    const report = (kind: ProblemKind, message: string, option?: string) => errors.push(problem(kind, s.at, message, s.name, option));
    switch (s.name) {
      case '%pre':
      case '%post': {
        const p = parseOptions(s.args, s.name === '%post' ? POST_OPTS : SCRIPT_OPTS, report);
        if (p.args.length) report('unexpected-argument', `unexpected argument ${JSON.stringify(p.args[0])}`);
        const interpreter = (p.opts.get('interpreter')?.value as string | undefined) ?? '/bin/sh';
        if (!interpreter.startsWith('/')) report('bad-value', `the interpreter must be an absolute path, got ${JSON.stringify(interpreter)}`, '--interpreter');
        const script: ScriptSpec = {
          kind: s.name === '%pre' ? 'pre' : 'post',
          body,
          interpreter,
          nochroot: p.opts.has('nochroot'),
          erroronfail: p.opts.has('erroronfail'),
          log: (p.opts.get('log')?.value as string | undefined) ?? null,
          at: s.at,
        };
        (script.kind === 'pre' ? ks.pre : ks.post).push(script);
        break;
      }
      case '%packages':
        // pykickstart adds the lines of every %packages section together.
        ks.packages = { lines: [...(ks.packages?.lines ?? []), ...s.body.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))], at: ks.packages?.at ?? s.at };
        ks.warnings.push(problem('bad-value', s.at, 'not applicable to an atomic host: the OS content comes from the OSTree commit; add packages to the image (or layer them later)', '%packages'));
        break;
      case '%pre-install':
      case '%traceback':
      case '%onerror':
      case '%addon':
      case '%anaconda':
        ks.warnings.push(problem('bad-value', s.at, 'accepted and ignored by atomhost apply', s.name));
        break;
    }
  };

  readFile(main, null);
  if (missingIncludes.length) {
    if (opts.lenientIncludes && ks.pre.length) {
      for (const m of missingIncludes) ks.warnings.push({ ...m, message: `${m.message} (expected to be written by %pre)` });
    } else errors.push(...missingIncludes);
  }
  if (opts.installChecks !== false) crossCheck(ks, errors, problem);
  errors.sort((a, b) => (a.file === b.file ? a.line - b.line : ks.files.indexOf(a.file) - ks.files.indexOf(b.file)));
  return { ks, errors };
}

/** Parses and throws a KickstartError listing every problem, or returns the kickstart. */
export function loadKickstart(path: string, reader: KsReader = fsReader, opts: ParseOptions = {}): Kickstart {
  const { ks, errors } = parseKickstart(path, reader, opts);
  if (errors.length) throw new KickstartError(errors);
  return ks;
}

type MakeProblem = (kind: ProblemKind, at: SourceRef, message: string, command?: string, option?: string) => KickstartProblem;

/** Checks across commands: conflicts, references, what an install needs. */
function crossCheck(ks: Kickstart, errors: KickstartProblem[], problem: MakeProblem): void {
  const top: SourceRef = { file: ks.files[0] ?? '?', line: 0 };
  const err = (kind: ProblemKind, at: SourceRef, msg: string, command?: string, option?: string) => errors.push(problem(kind, at, msg, command, option));

  if (ks.ostreesetup && ks.ostreecontainer) {
    err('conflict', ks.ostreecontainer.at, `conflicts with ostreesetup at ${ks.ostreesetup.at.file}:${ks.ostreesetup.at.line}: one source of the OS only`, 'ostreecontainer');
  }
  if (!ks.ostreesetup && !ks.ostreecontainer) err('missing-command', top, 'an atomic host kickstart needs ostreesetup (or ostreecontainer) to say which OS to install', 'ostreesetup');

  const manual = [...ks.parts.map((p) => ({ c: 'part', at: p.at })), ...ks.volgroups.map((v) => ({ c: 'volgroup', at: v.at })), ...ks.logvols.map((l) => ({ c: 'logvol', at: l.at }))];
  if (ks.autopart) {
    for (const m of manual) err('conflict', m.at, `conflicts with autopart at ${ks.autopart.at.file}:${ks.autopart.at.line}: autopart lays out the whole disk`, m.c);
    if (ks.reqpart) err('conflict', ks.reqpart.at, `conflicts with autopart at ${ks.autopart.at.file}:${ks.autopart.at.line}: autopart already makes the required partitions`, 'reqpart');
  } else if (ks.parts.length === 0 && ks.logvols.length === 0) {
    err('missing-command', top, 'no partitioning: give autopart, or part / (with volgroup/logvol for LVM)', 'part');
  }

  if (!ks.autopart && (ks.parts.length || ks.logvols.length)) {
    const mounts = new Map<string, SourceRef>();
    for (const m of [...ks.parts, ...ks.logvols]) {
      if (!m.mntpoint.startsWith('/')) continue;
      const prev = mounts.get(m.mntpoint);
      if (prev) err('duplicate', m.at, `mount point ${m.mntpoint} is already used at ${prev.file}:${prev.line}`, 'logvol' in m ? 'logvol' : 'part');
      else mounts.set(m.mntpoint, m.at);
    }
    if (!mounts.has('/')) err('missing-command', top, 'no root file system: add part / or logvol /', 'part');
    const grows = ks.parts.filter((p) => p.grow && !p.maxsize);
    if (grows.length > 1) err('conflict', grows[1].at, `more than one partition grows without --maxsize (also ${grows[0].at.file}:${grows[0].at.line}); give --maxsize to all but one`, 'part', '--grow');
    if (ks.reqpart) {
      for (const p of ks.parts) {
        if (p.fstype === 'biosboot' || p.fstype === 'efi' || (ks.reqpart.addBoot && p.mntpoint === '/boot')) {
          err('conflict', p.at, `${p.mntpoint} is made by reqpart${ks.reqpart.addBoot && p.mntpoint === '/boot' ? ' --add-boot' : ''} at ${ks.reqpart.at.file}:${ks.reqpart.at.line}`, 'part');
        }
      }
    }
    // LVM references.
    const pvs = new Map(ks.parts.filter((p) => p.fstype === 'lvmpv').map((p) => [p.mntpoint, p]));
    const pvUse = new Map<string, string>();
    const vgs = new Map<string, SourceRef>();
    for (const vg of ks.volgroups) {
      if (vgs.has(vg.name)) err('duplicate', vg.at, `volume group ${vg.name} is already defined at ${vgs.get(vg.name)!.file}:${vgs.get(vg.name)!.line}`, 'volgroup');
      vgs.set(vg.name, vg.at);
      for (const pv of vg.pvs) {
        if (!pvs.has(pv)) err('reference', vg.at, `physical volume ${pv} is not defined by a part ${pv.startsWith('pv.') ? pv : 'pv.NAME'} line`, 'volgroup');
        else if (pvUse.has(pv)) err('conflict', vg.at, `physical volume ${pv} is already in volume group ${pvUse.get(pv)}`, 'volgroup');
        else pvUse.set(pv, vg.name);
      }
    }
    for (const [name, p] of pvs) if (!pvUse.has(name)) ks.warnings.push(problem('reference', p.at, `physical volume ${name} is in no volume group`, 'part'));
    const lvNames = new Map<string, SourceRef>();
    const growLv = new Map<string, number>();
    for (const lv of ks.logvols) {
      if (lv.vgname && !vgs.has(lv.vgname)) err('reference', lv.at, `volume group ${lv.vgname} is not defined by a volgroup line`, 'logvol', '--vgname');
      const key = `${lv.vgname}/${lv.name}`;
      if (lv.name && lvNames.has(key)) err('duplicate', lv.at, `logical volume ${key} is already defined at ${lvNames.get(key)!.file}:${lvNames.get(key)!.line}`, 'logvol', '--name');
      lvNames.set(key, lv.at);
      if (lv.grow && !lv.maxsize) growLv.set(lv.vgname, (growLv.get(lv.vgname) ?? 0) + 1);
    }
    for (const [vg, n] of growLv) if (n > 1) err('conflict', ks.logvols.filter((l) => l.vgname === vg && l.grow)[1].at, `more than one logical volume of ${vg} grows without --maxsize`, 'logvol', '--grow');
    for (const vg of ks.volgroups) {
      const pct = ks.logvols.filter((l) => l.vgname === vg.name && l.percent).reduce((a, l) => a + (l.percent ?? 0), 0);
      if (pct > 100) err('bad-value', vg.at, `its logical volumes ask for ${pct}% of it`, 'volgroup');
    }
  }

  // Users and keys.
  const users = new Map<string, SourceRef>();
  const uids = new Map<number, string>();
  for (const u of ks.users) {
    if (!u.name) continue;
    if (users.has(u.name)) err('duplicate', u.at, `user ${u.name} is already defined at ${users.get(u.name)!.file}:${users.get(u.name)!.line}`, 'user', '--name');
    users.set(u.name, u.at);
    if (u.uid !== null) {
      if (uids.has(u.uid)) err('duplicate', u.at, `uid ${u.uid} is already used by ${uids.get(u.uid)}`, 'user', '--uid');
      uids.set(u.uid, u.name);
    }
  }
  for (const k of ks.sshkeys) {
    if (k.username && k.username !== 'root' && !users.has(k.username)) {
      ks.warnings.push(problem('reference', k.at, `user ${k.username} is not created by a user line; it must exist in the OS image`, 'sshkey', '--username'));
    }
  }

  // Network: one configuration per device; one host name.
  const devices = new Map<string, SourceRef>();
  let hostnameAt: SourceRef | null = null;
  for (const n of ks.network) {
    const onlyHostname = isHostnameOnly(n);
    if (n.hostname !== null) {
      if (hostnameAt) ks.warnings.push(problem('duplicate', n.at, `the host name is also set at ${hostnameAt.file}:${hostnameAt.line}; the last one wins`, 'network', '--hostname'));
      hostnameAt = n.at;
    }
    if (onlyHostname) continue;
    const dev = n.device ?? '(first device with a link)';
    if (devices.has(dev)) err('duplicate', n.at, `device ${dev} is already configured at ${devices.get(dev)!.file}:${devices.get(dev)!.line}`, 'network', '--device');
    devices.set(dev, n.at);
  }

  if (ks.bootloader?.location === 'none' || ks.bootloader?.disabled) {
    ks.warnings.push(problem('bad-value', ks.bootloader.at, 'no boot loader: the image gets its BLS entries but nothing to read them', 'bootloader'));
  }
}

/** Options of ostreesetup as the remote and ref atomhost deploys (REMOTE:REF). */
export function refspecOf(ks: Kickstart): string | null {
  return ks.ostreesetup ? `${ks.ostreesetup.remote}:${ks.ostreesetup.ref}` : null;
}
