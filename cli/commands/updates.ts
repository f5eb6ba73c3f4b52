// atomhost updates status|check|pause|resume: the update agent in atomhostd (docs/updates.md).
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import type { UpdatesReport } from '../../core/updates/state.js';
import { action, printJson, type CliContext, type Registrar } from '../context.js';
import { renderUpdates } from '../render.js';

type Member = 'GetUpdates' | 'UpdatesCheck' | 'UpdatesPause' | 'UpdatesResume';

export const registerUpdates: Registrar = (program: Command, ctx: CliContext) => {
  const cmd = program.command('updates').description("the automatic update agent: its state, a check now, pause and resume");
  const ask = (member: Member) =>
    action(ctx, async () => {
      if (ctx.globals().sysroot) throw new InvalidArgumentError('atomhost updates asks atomhostd, which runs the update agent; it takes no --sysroot', { field: 'sysroot' });
      const d = await (await import('../dbus-backend.js')).connectDaemon();
      let r: UpdatesReport;
      try {
        r = await d.updates(member);
      } finally {
        await d.close();
      }
      if (ctx.globals().json) printJson(r);
      else process.stdout.write(renderUpdates(r));
      return r.state === 'error' ? 1 : 0;
    });
  cmd.command('status').description("the agent's state, why, its target, and when it looks next (exit 1 in the error state)").action(ask('GetUpdates'));
  cmd.command('check').description('run one cycle now: check, stage, and reboot if the policy allows (root or polkit)').action(ask('UpdatesCheck'));
  cmd.command('pause').description('stop automatic updates until resume (kept across reboots; root or polkit)').action(ask('UpdatesPause'));
  cmd.command('resume').description('resume automatic updates and check now (root or polkit)').action(ask('UpdatesResume'));
};
