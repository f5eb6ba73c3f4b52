// atomhost's commands (main.ts is the entry). It only parses arguments and renders; the verbs
// live behind HostApi, in process with --sysroot, or in atomhostd over the system bus otherwise.
// Static imports here are what every command pays for: commander, the renderers, the errors.
import { Command, Option } from 'commander';
import { EXIT, InvalidArgumentError } from '../core/errors.js';
import type { HostApi, TxContext } from '../core/host-api.js';
import { action, printJson, type CliContext, type GlobalOptions } from './context.js';
import { registerContainer } from './commands/container.js';
import { registerStack } from './commands/stack.js';
import { registerKickstart } from './commands/kickstart.js';
import { registerCompose } from './commands/compose.js';
import { registerRemote } from './commands/remote.js';
import { registerFleetlock } from './commands/fleetlock.js';
import { registerUpdates } from './commands/updates.js';
import { openHost as openHostIn, withHost as withHostIn } from './host-session.js';
import { runStatus, type StatusOptions } from './commands/status.js';
import { PENDING_EXIT } from './status-select.js';
import { applyUsageHabits } from './usage.js';
import { renderPreview, renderResult, renderRevisionDiff, renderRevisions } from './render.js';

const program = new Command();
program
  .name('atomhost')
  .description('Upgrade, roll back and inspect an atomic container host: one revision for the OS, its system containers and their units.')
  .addHelpText('after', '\nOptions before a command:\n  -V, --version             output the version number')
  .option('--sysroot <path>', 'work in-process on this OSTree sysroot instead of asking atomhostd (as `ostree admin --sysroot`)')
  .option('--json', 'print machine-readable JSON (reads) and JSON errors')
  .option('--progress-json', 'write progress events as JSON Lines on stderr')

const ctx: CliContext = { globals: () => program.opts<GlobalOptions>() };

export function openHost(c: CliContext = ctx): Promise<HostApi> {
  return openHostIn(c);
}

function withHost<T>(fn: (host: HostApi, tx: TxContext) => Promise<T>): Promise<T> {
  return withHostIn(ctx, fn);
}

async function maybeReboot(reboot: boolean | undefined): Promise<void> {
  if (!reboot) return;
  if (ctx.globals().sysroot) throw new InvalidArgumentError('--reboot reboots the running host; it has no meaning with --sysroot', { field: 'reboot' });
  process.stderr.write('Rebooting...\n');
  const { runOk } = await import('../core/exec.js');
  await runOk('systemctl', ['reboot']);
}

function report(result: { message: string }, extra?: unknown): void {
  if (ctx.globals().json) printJson(extra ?? result);
  else process.stdout.write(`${renderResult(result as never)}\n`);
}

program
  .command('status')
  .description('show the deployments, their revisions and the default/rollback entries')
  .option('-b, --booted', 'only the booted deployment (none on a --sysroot that is not the running system)')
  .option('-v, --verbose', 'more per deployment: full revision ids and container digests, signing keys, units')
  .option('--pending-exit-77', `exit ${PENDING_EXIT} when the next boot starts another deployment than the booted one (as rpm-ostree)`)
  .action(
    action(ctx, (opts: StatusOptions) => runStatus(ctx, opts)),
  );

program
  .command('upgrade')
  .description('pull the newest commit of the default refspec and deploy it as a new revision')
  .option('--check', `only say whether an update exists (exit ${EXIT.NO_UPDATE} when none)`)
  .option('--preview', 'like --check, and also download it and show the version, kernel-argument and file changes')
  .option('-r, --reboot', 'reboot into the new revision when it is deployed')
  .action(
    action(ctx, async (opts: { check?: boolean; preview?: boolean; reboot?: boolean }) => {
      if (opts.check || opts.preview) {
        const p = await withHost((h, tx) => h.checkUpdate({ preview: opts.preview ?? false }, tx));
        if (ctx.globals().json) printJson(p);
        else process.stdout.write(`${renderPreview(p)}\n`);
        return p.available ? EXIT.OK : EXIT.NO_UPDATE;
      }
      const r = await withHost((h, tx) => h.upgrade(tx));
      report(r);
      await maybeReboot(opts.reboot);
    }),
  );

program
  .command('deploy')
  .argument('<target>', 'a version from the refspec history (e.g. 41.2) or a commit checksum')
  .description('deploy a given version or commit of the current refspec as a new revision')
  .option('-r, --reboot', 'reboot into it when it is deployed')
  .action(
    action(ctx, async (target: string, opts: { reboot?: boolean }) => {
      report(await withHost((h, tx) => h.deploy(target, tx)));
      await maybeReboot(opts.reboot);
    }),
  );

program
  .command('rebase')
  .argument('<refspec>', 'REMOTE:REF (or a local REF) to follow from now on')
  .description('switch to another refspec; on an empty sysroot this makes the first deployment (give --os)')
  .option('--os <name>', 'OS name (stateroot) for the deployment; defaults to the current one')
  .option('-r, --reboot', 'reboot into it when it is deployed')
  .action(
    action(ctx, async (refspec: string, opts: { os?: string; reboot?: boolean }) => {
      report(await withHost((h, tx) => h.rebase(refspec, { osname: opts.os }, tx)));
      await maybeReboot(opts.reboot);
    }),
  );

program
  .command('rollback')
  .description('make the previous deployment, with its whole revision, the default again')
  .option('-r, --reboot', 'reboot into it right away')
  .action(
    action(ctx, async (opts: { reboot?: boolean }) => {
      report(await withHost((h, tx) => h.rollback(tx)));
      await maybeReboot(opts.reboot);
    }),
  );

const collect = (v: string, prev: string[] = []) => [...prev, v];
program
  .command('kargs')
  .description('show or change the kernel arguments (a change makes a new deployment and revision)')
  .option('--append <karg>', 'add KEY[=VALUE] (repeatable)', collect)
  .option('--delete <karg>', 'remove KEY or KEY=VALUE (repeatable)', collect)
  .option('--replace <karg>', 'change KEY=NEW or KEY=OLD=NEW (repeatable)', collect)
  .action(
    action(ctx, async (opts: { append?: string[]; delete?: string[]; replace?: string[] }) => {
      if (!opts.append && !opts.delete && !opts.replace) {
        const s = await withHost((h) => h.status());
        const kargs = s.status.deployments[0]?.kargs ?? [];
        if (ctx.globals().json) printJson({ kargs });
        else process.stdout.write(`${kargs.join(' ')}\n`);
        return;
      }
      report(await withHost((h, tx) => h.kargs(opts, tx)));
    }),
  );

program
  .command('cleanup')
  .description('prune unused objects and boot files; with --rollback also remove the rollback deployment')
  .option('--rollback', 'remove the rollback deployment')
  .action(action(ctx, async (opts: { rollback?: boolean }) => report(await withHost((h, tx) => h.cleanup({ rollback: opts.rollback ?? false }, tx)))));

for (const [name, pinned] of [['pin', true], ['unpin', false]] as const) {
  program
    .command(name)
    .argument('<index>', 'deployment index as shown by `atomhost status`')
    .description(pinned ? 'keep a deployment (and its revision) from being garbage-collected' : 'let a pinned deployment be removed again')
    .action(
      action(ctx, async (index: string) => {
        const i = Number(index);
        if (!Number.isInteger(i) || i < 0) throw new InvalidArgumentError(`deployment index must be a number ≥ 0, got ${JSON.stringify(index)}`, { field: 'index' });
        report(await withHost((h, tx) => h.setPinned(i, pinned, tx)));
      }),
    );
}

program
  .command('cancel')
  .description("cancel atomhostd's running transaction (it leaves the host as it was)")
  .action(
    action(ctx, async () => {
      if (ctx.globals().sysroot) throw new InvalidArgumentError('cancel talks to atomhostd; with --sysroot, interrupt the command itself (Ctrl-C)', { field: 'sysroot' });
      const host = (await openHost()) as HostApi & { cancel(): Promise<void> };
      try {
        await host.cancel();
      } finally {
        await host.close();
      }
      process.stdout.write('Cancel requested\n');
    }),
  );

program
  .command('revisions')
  .description('list the host revisions, newest first, a page at a time')
  .option('--limit <n>', 'show at most N revisions', '20')
  .option('--all', 'show every revision')
  .option('--before <id>', 'show the revisions older than this one (id or unique prefix): the next page')
  .action(
    action(ctx, async (o: { limit: string; all?: boolean; before?: string }) => {
      if (!/^\d{1,6}$/.test(o.limit) || Number(o.limit) < 1) throw new InvalidArgumentError(`--limit must be a whole number ≥ 1, got ${JSON.stringify(o.limit)}`, { field: 'limit' });
      const query = { limit: o.all ? undefined : Number(o.limit), before: o.before };
      const [page, s] = await withHost(async (h) => [await h.listRevisions(query), await h.status()] as const);
      if (ctx.globals().json) printJson(page.revisions);
      else process.stdout.write(`${renderRevisions(page, s.spec.revision)}\n`);
    }),
  );

program
  .command('diff')
  .argument('<from>', 'revision id (or a unique prefix)')
  .argument('<to>', 'revision id (or a unique prefix)')
  .description('show what changes between two revisions: OS version and files, kernel args, containers, units')
  .action(
    action(ctx, async (from: string, to: string) => {
      const d = await withHost((h) => h.diff(from, to));
      if (ctx.globals().json) printJson(d);
      else process.stdout.write(`${renderRevisionDiff(d)}\n`);
    }),
  );

// Command groups in their own modules (they load their heavy parts only when run).
registerContainer(program, ctx);
registerStack(program, ctx);
registerKickstart(program, ctx);
registerCompose(program, ctx);
registerRemote(program, ctx);
registerFleetlock(program, ctx);
registerUpdates(program, ctx);

program.addOption(new Option('--debug').hideHelp().env('ATOMHOST_DEBUG'));
applyUsageHabits(program);
await program.parseAsync(process.argv);
