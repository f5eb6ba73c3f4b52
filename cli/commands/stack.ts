// atomhost stack follow|unfollow|show: which stack manifest the host upgrades to as a whole.
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import type { StackStatus } from '../../containers/supervisor.js';
import { action, printJson, type CliContext, type Registrar } from '../context.js';

export const registerStack: Registrar = (program: Command, ctx: CliContext) => {
  const cmd = program.command('stack').description('the whole-stack release the host follows (OS + system containers as one revision)');
  const host = async () => (await import('../local-host.js')).openLocalHost(ctx.globals().sysroot ?? '/');

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

  const withDaemon = async <T>(fn: (d: Awaited<ReturnType<typeof import('../dbus-backend.js').connectDaemon>>) => Promise<T>): Promise<T> => {
    if (ctx.globals().sysroot) throw new InvalidArgumentError('stack status and stack restart ask atomhostd about the running stack; they take no --sysroot', { field: 'sysroot' });
    const d = await (await import('../dbus-backend.js')).connectDaemon();
    try {
      return await fn(d);
    } finally {
      await d.close();
    }
  };
  cmd
    .command('status')
    .description("each role's containers: unit state, restarts, probe, and the last journal lines of what is unhealthy (exit 1 when unhealthy)")
    .action(
      action(ctx, () =>
        withDaemon(async (d) => {
          const s = await d.stackStatus();
          if (ctx.globals().json) printJson(s);
          else process.stdout.write(renderStackStatus(s));
          return s.healthy ? 0 : 1;
        }),
      ),
    );
  cmd
    .command('restart')
    .argument('<role>', 'network, runtime, engine, kubelet or other')
    .description('restart every container of a role through systemd and wait for it')
    .action(
      action(ctx, (role: string) =>
        withDaemon(async (d) => {
          const r = await d.restartRole(role);
          if (ctx.globals().json) printJson(r);
          else process.stdout.write(`${r.message}\n`);
        }),
      ),
    );

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

function renderStackStatus(s: StackStatus): string {
  if (!s.revision) return 'No revision: the host has no deployment made by atomhost yet.\n';
  const lines = [`Revision ${s.revision.slice(0, 12)} (${s.state}${s.stateReason ? `: ${s.stateReason}` : ''}), stack ${s.healthy ? 'healthy' : 'UNHEALTHY'}`];
  if (!s.roles.length) lines.push('  no system containers or host units');
  for (const r of s.roles) {
    for (const c of r.containers) {
      lines.push(`  ${r.role.padEnd(8)} ${c.name.padEnd(14)} ${`${c.activeState}/${c.subState}`.padEnd(20)} restarts ${String(c.restarts).padEnd(3)} ${c.healthy ? 'ok' : c.detail}`);
      for (const j of c.journal) lines.push(`      | ${j}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
