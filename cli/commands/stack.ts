// atomhost stack follow|unfollow|show: which stack manifest the host upgrades to as a whole.
import type { Command } from 'commander';
import { action, printJson, type CliContext, type Registrar } from '../context.js';

export const registerStack: Registrar = (program: Command, ctx: CliContext) => {
  const cmd = program.command('stack').description('the whole-stack release the host follows (OS + system containers as one revision)');
  const host = async () => (await import('../../core/local-host.js')).LocalHost.open(ctx.globals().sysroot ?? '/');

  const follow = (source: string | null) => async () => {
    const r = await (await host()).followStack(source);
    if (ctx.globals().json) printJson(r);
    else process.stdout.write(`${r.message}\n`);
  };
  cmd
    .command('follow')
    .argument('<source>', 'stack manifest: a file path, file:// or http(s):// URL, or "commit" (the OS commit\'s atomhost.stack metadata)')
    .description('upgrade the whole stack from this manifest from now on (atomhost upgrade)')
    .action(action(ctx, (source: string) => follow(source)()));
  cmd.command('unfollow').description('follow the OS refspec alone again').action(action(ctx, follow(null)));

  cmd
    .command('show')
    .description('the stack source of the default deployment')
    .action(
      action(ctx, async () => {
        const h = await host();
        const { stackSourceFromOrigin } = await import('../../core/revision.js');
        const source = stackSourceFromOrigin(h.sysroot.deployments[0]?.origin ?? null);
        if (ctx.globals().json) printJson({ source });
        else process.stdout.write(`${source ?? '(none: the host follows its OS refspec)'}\n`);
      }),
    );
};
