// atomhost kickstart validate|apply: read an Anaconda kickstart (the atomic-host subset),
// report every mistake with its file and line, or provision a disk image from it.
// Provisioning runs in the CLI process (it needs the disk, not the running host's sysroot).
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import { action, printJson, type CliContext, type Registrar } from '../context.js';

const DEFAULT_PLAN_SIZE = '20G';

export const registerKickstart: Registrar = (program: Command, ctx: CliContext) => {
  const cmd = program.command('kickstart').description('validate an Anaconda kickstart, or provision a disk image from one (ostreesetup)');

  cmd
    .command('validate')
    .argument('<file>', 'the kickstart file')
    .option('--size <size>', `plan the partitions for a disk of this size (default ${DEFAULT_PLAN_SIZE})`)
    .option('--version <version>', "judge by this kickstart version, as pykickstart's ksvalidator -v (e.g. F40, RHEL9; default the newest, F45)")
    .description('print every error with its file and line, or a summary of what apply would do')
    .action(
      action(ctx, async (file: string, o: { size?: string; version?: string }) => {
        const { parseKickstart } = await import('../../kickstart/parser.js');
        const { formatProblem } = await import('../../kickstart/errors.js');
        const { planLayout, parseSize, LayoutError } = await import('../../kickstart/layout.js');
        const { summarize } = await import('../../kickstart/summary.js');
        const version = o.version === undefined ? undefined : await versionOption(o.version);
        const sizeBytes = parseSize(o.size ?? DEFAULT_PLAN_SIZE);
        if (!sizeBytes) throw new InvalidArgumentError(`invalid --size ${JSON.stringify(o.size)} (e.g. 4G, 512M)`, { field: 'size' });
        const { ks, errors } = parseKickstart(file, undefined, { lenientIncludes: true, version });
        let layout = null;
        let layoutError: string | null = null;
        if (!errors.length) {
          try {
            layout = planLayout(ks, sizeBytes, ks.ostreesetup?.osname ?? 'os');
          } catch (err) {
            if (!(err instanceof LayoutError)) throw err;
            layoutError = `${err.message} (for a ${o.size ?? DEFAULT_PLAN_SIZE} disk)`;
          }
        }
        // Valid kickstart that apply cannot do here is a warning (pykickstart accepts it);
        // apply itself refuses it before touching a disk.
        const valid = errors.length === 0;
        const applicable = valid && ks.unsupported.length === 0;
        if (ctx.globals().json) {
          printJson({ file, version: ks.version, valid, applicable, errors, unsupported: ks.unsupported, warnings: ks.warnings, layoutError, summary: valid ? summarize(ks, layout) : null });
        } else {
          for (const p of errors) process.stderr.write(`${formatProblem(p)}\n`);
          for (const p of ks.unsupported) process.stderr.write(`warning: ${formatProblem(p)} (valid, but apply cannot do it here)\n`);
          for (const p of ks.warnings) process.stderr.write(`warning: ${formatProblem(p)}\n`);
          if (errors.length) process.stderr.write(`${errors.length} error${errors.length > 1 ? 's' : ''} in ${file} (kickstart version ${ks.version})\n`);
          else process.stdout.write(renderSummary(summarize(ks, layout), o.size ?? DEFAULT_PLAN_SIZE, layoutError, ks.version, ks.unsupported.length));
        }
        return valid ? 0 : 1;
      }),
    );

  cmd
    .command('apply')
    .argument('<file>', 'the kickstart file')
    .option('--image <path>', 'write a disk image file here (with --size)')
    .option('--size <size>', 'size of the image, e.g. 4G')
    .option('--disk <device>', 'provision this block device instead (everything on it is erased)')
    .option('--force', 'replace an existing image file')
    .option('--version <version>', 'judge the kickstart by this version, as validate --version (default the newest, F45)')
    .description('provision a disk image: partitions, file systems, the OSTree deployment, /etc, %post; needs root')
    .action(
      action(ctx, async (file: string, o: { image?: string; size?: string; disk?: string; force?: boolean; version?: string }) => {
        const { parseSize } = await import('../../kickstart/layout.js');
        const { applyKickstart } = await import('../../kickstart/apply.js');
        const { progressView } = await import('../progress-view.js');
        const sizeBytes = o.size ? parseSize(o.size) : undefined;
        if (o.size && !sizeBytes) throw new InvalidArgumentError(`invalid --size ${JSON.stringify(o.size)} (e.g. 4G, 512M)`, { field: 'size' });
        const version = o.version === undefined ? undefined : await versionOption(o.version);
        if (process.getuid?.() !== 0) throw new InvalidArgumentError('kickstart apply needs root (loop devices, mkfs, mount)', { field: 'uid' });
        const view = progressView({ json: ctx.globals().json ?? false, jsonLines: false });
        try {
          const r = await applyKickstart(file, { image: o.image, disk: o.disk, sizeBytes: sizeBytes ?? undefined, force: o.force, progress: view.sink, version });
          if (ctx.globals().json) printJson(r);
          else {
            const lines = [
              `Provisioned ${r.target} (${Math.round(r.sizeBytes / 1024 ** 2)} MiB)`,
              ...r.volumes.map((v) => `  ${(v.mount ?? '-').padEnd(10)} ${v.fstype.padEnd(8)} ${String(v.sizeMiB).padStart(7)} MiB  ${v.where}${v.uuid ? `  UUID=${v.uuid}` : ''}`),
              `Deployed ${r.deployment.refspec} ${r.deployment.version ?? ''} (${r.deployment.checksum.slice(0, 12)}) as ${r.deployment.osname}, revision ${r.deployment.revision?.slice(0, 12) ?? '-'}`,
              `Kernel arguments: ${r.kargs.join(' ')}`,
              ...r.configured.map((c) => `  ${c}`),
              ...r.scripts.map((s) => `  ${s.section} (${s.file}:${s.line}) exited ${s.exitCode}; log ${s.logInTarget ?? s.log}`),
              ...r.warnings.map((w) => `warning: ${w}`),
            ];
            if (r.finish) lines.push(`The kickstart asks to ${r.finish}: boot the image to use it (apply does not power anything off)`);
            process.stdout.write(`${lines.join('\n')}\n`);
          }
        } finally {
          view.done();
        }
      }),
    );
};

/** A --version as pykickstart names it (F40, RHEL9, DEVEL), or a clear error. */
async function versionOption(written: string) {
  const { parseVersion, VERSIONS } = await import('../../kickstart/versions.js');
  const v = parseVersion(written);
  if (!v) throw new InvalidArgumentError(`unknown kickstart version ${JSON.stringify(written)} (one of ${VERSIONS.join(', ')}, or DEVEL)`, { field: 'version' });
  return v;
}

function renderSummary(s: ReturnType<typeof import('../../kickstart/summary.js').summarize>, size: string, layoutError: string | null, version: string, unsupported: number): string {
  const lines = unsupported
    ? [`The kickstart is valid (kickstart version ${version}), but apply cannot do ${unsupported} thing${unsupported > 1 ? 's' : ''} it asks (warnings above) and would refuse it. Otherwise apply would:`]
    : [`The kickstart is valid (kickstart version ${version}). apply would:`];
  lines.push(`  install ${s.os}`);
  if (s.partitions.length) lines.push(`  partition a ${size} disk (GPT):`, ...s.partitions.map((p) => `    ${p}`));
  if (layoutError) lines.push(`  but: ${layoutError}`);
  lines.push(`  kernel arguments: ${s.kargs || '(root= only)'}`, ...s.etc.map((e) => `  ${e}`));
  for (const sc of s.scripts) lines.push(`  run ${sc}`);
  return `${lines.join('\n')}\n`;
}
