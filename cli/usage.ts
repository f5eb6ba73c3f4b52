// Usage errors, the same for every command: commander's message, a one-line hint naming the
// command's --help, and exit code 2 (README.md "Exit codes"). Commander itself exits 1 for
// them, which scripts cannot tell from a failed operation. With --json the message is the
// JSON error line every other atomhost error is.
import type { Command } from 'commander';
import { EXIT, InvalidArgumentError } from '../core/errors.js';

/** The words a user types for this command: `atomhost container add`. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** `--json` given before a bare `--` (options after it are arguments). */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Applies the habits to `program` and every subcommand under it; call it once every
 * command is registered (commander copies settings only to commands made after them).
 */
export function applyUsageHabits(program: Command, argv: string[] = process.argv): void {
  const json = wantsJson(argv.slice(2));
  const visit = (cmd: Command): void => {
    cmd.showHelpAfterError(json ? false : `Try '${commandPath(cmd)} --help' for more information.`);
    cmd.configureOutput({
      outputError: (text, write) => {
        const message = text.trim().replace(/^error: /, '');
        if (json) write(`${JSON.stringify({ error: new InvalidArgumentError(message, { command: commandPath(cmd) }).toJSON() })}\n`);
        else write(text);
      },
    });
    // --help and --version end with 0; everything else commander stops on is bad usage
    // (unknown command or option, a missing or extra argument, a group without its verb).
    cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE));
    cmd.commands.forEach(visit);
  };
  visit(program);
}
