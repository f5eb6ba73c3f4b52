// atomhost compose TREEFILE --repo REPO: build a bootable OS commit (see docs/compose.md).
import type { Command } from 'commander';
import { action, printJson, type CliContext, type Registrar } from '../context.js';
import { progressView } from '../progress-view.js';

export const registerCompose: Registrar = (program: Command, ctx: CliContext) => {
  program
    .command('compose')
    .argument('<treefile>', 'the treefile (YAML): suite, packages, files, units, version')
    .requiredOption('--repo <path>', 'the archive OSTree repository to commit into (made if missing)')
    .option('--cache <dir>', 'where the Debian root tarballs are cached', '/var/cache/atomhost/compose')
    .description('build a bootable OSTree commit of a Debian-based OS from a treefile (mmdebstrap, dracut, OSTree layout)')
    .action(
      action(ctx, async (file: string, o: { repo: string; cache: string }) => {
        const { parseTreefile } = await import('../../compose/treefile.js');
        const { compose } = await import('../../compose/compose.js');
        const tf = parseTreefile(file);
        const view = progressView({ json: ctx.globals().json ?? false, jsonLines: false });
        try {
          const r = await compose(tf, o.repo, { cache: o.cache, progress: view.sink });
          if (ctx.globals().json) printJson(r);
          else process.stdout.write(`${r.ref} ${r.version}: commit ${r.commit}\n  content ${r.contentChecksum}, kernel ${r.kernel}\n`);
        } finally {
          view.done();
        }
      }),
    );
};
