// Typed kickstart errors. A parse or validation failure carries every problem found (file,
// line, command, option), not just the first; apply failures name the step that failed.
import { AtomhostError } from '../core/errors.js';

/** The classes of kickstart problems; the corpus under test/kickstart/corpus has one file per class. */
export type ProblemKind =
  | 'syntax' // unbalanced quote, continuation at end of file
  | 'unknown-command'
  | 'unknown-option'
  | 'missing-option' // a required option is absent
  | 'missing-value' // an option or positional argument without its value
  | 'unexpected-argument' // an extra positional argument or a value given to a flag
  | 'bad-value'
  | 'conflict' // mutually exclusive commands or options
  | 'duplicate' // a command that may appear once, given twice
  | 'missing-command' // a command the install needs is absent
  | 'reference' // names something not defined (volgroup pv, logvol vgname, ...)
  | 'section' // %section errors: unknown, unterminated, bad options
  | 'include'; // %include: missing file, loop

export interface SourceRef {
  file: string;
  line: number;
}

export interface KickstartProblem extends SourceRef {
  kind: ProblemKind;
  /** The command (or %section) the problem is in, when there is one. */
  command?: string;
  /** The option concerned, spelled as in the file (e.g. --bootproto). */
  option?: string;
  message: string;
}

export function formatProblem(p: KickstartProblem): string {
  const where = `${p.file}:${p.line}`;
  const what = p.command ? `${p.command}${p.option ? ` ${p.option}` : ''}: ` : '';
  return `${where}: ${what}${p.message}`;
}

/** A kickstart file that does not parse or validate; `problems` lists them all. */
export class KickstartError extends AtomhostError {
  readonly problems: KickstartProblem[];
  constructor(problems: KickstartProblem[]) {
    const head = problems.length === 1 ? '1 error in the kickstart' : `${problems.length} errors in the kickstart`;
    super('AH_ERR_KICKSTART', `${head}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`, {
      details: { problems },
    });
    this.name = 'KickstartError';
    this.problems = problems;
  }
}

/** A valid kickstart that asks for something `apply` cannot do on this host. */
export class KickstartUnsupportedError extends AtomhostError {
  readonly problems: KickstartProblem[];
  constructor(problems: KickstartProblem[]) {
    super('AH_ERR_KICKSTART', `the kickstart is valid but cannot be applied here:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`, {
      details: { problems },
    });
    this.name = 'KickstartUnsupportedError';
    this.problems = problems;
  }
}

/** A provisioning step failed; the image is not presented as good. */
export class KickstartApplyError extends AtomhostError {
  readonly step: string;
  constructor(step: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('AH_ERR_KICKSTART', `kickstart apply failed at ${step}: ${message}`, { cause: options.cause, details: { step, ...options.details } });
    this.name = 'KickstartApplyError';
    this.step = step;
  }
}

/** A %pre or %post script exited non-zero under --erroronfail. */
export class KickstartScriptError extends KickstartApplyError {
  constructor(section: string, at: SourceRef, exitCode: number, tail: string) {
    super(section, `${section} script at ${at.file}:${at.line} exited with ${exitCode} (--erroronfail)${tail ? `; its last output:\n${tail.replace(/^/gm, '    ')}` : ' with no output'}`, { details: { file: at.file, line: at.line, exitCode, output: tail } });
    this.name = 'KickstartScriptError';
  }
}
