// atomhost container install|list|update|rollback|uninstall|gc. Without --sysroot each
// verb is a transaction in atomhostd (followed by its health gate); with --sysroot it runs
// in this process and only records the revision, or with --live also applies it through
// systemd's D-Bus API.
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../core/errors.js';
import type { UnitManager } from '../../core/unit-manager.js';
import type { HealthProbe } from '../../core/revision.js';
import { action, printJson, type CliContext, type Registrar } from '../context.js';
import { progressView } from '../progress-view.js';

/** The container verbs, in this process (--sysroot) or through atomhostd. */
interface ContainerVerbs {
  install(image: string, opts: { name?: string; values?: Record<string, string>; role?: string; probe?: HealthProbe }): Promise<unknown>;
  update(name: string): Promise<unknown>;
  rollback(name: string): Promise<unknown>;
  uninstall(name: string): Promise<unknown>;
  list(): Promise<{ name: string; image: string; digest: string; role?: string; activeState: string | null; subState: string | null }[]>;
  gc(): Promise<{ images: number; layers: number; checkouts: number }>;
}

async function open(ctx: CliContext): Promise<{ containers: ContainerVerbs; close(): Promise<void> }> {
  const g = ctx.globals() as { sysroot?: string; json?: boolean; progressJson?: boolean };
  if (!g.sysroot && process.env.ATOMHOST_LIVE !== '1') return openDaemon(g);
  const [{ openLocalHost }, { SystemContainers }] = await Promise.all([import('../local-host.js'), import('../../containers/lifecycle.js')]);
  const host = await openLocalHost(g.sysroot ?? '/');
  let units: UnitManager | null = null;
  // On the running host, apply through systemd; with --sysroot only with --live (a
  // sysroot of this very system mounted elsewhere, or a test host).
  if (!g.sysroot || process.env.ATOMHOST_LIVE === '1' || process.argv.includes('--live')) {
    const { connectSystemd } = await import('../../systemd/client.js');
    units = await connectSystemd();
  }
  const view = progressView({ json: g.json ?? false, jsonLines: g.progressJson ?? false });
  const containers = new SystemContainers(host, { units, progress: view.sink });
  return {
    containers,
    close: async () => {
      view.done();
      await (units as { close?: () => Promise<void> } | null)?.close?.();
    },
  };
}

/** Through atomhostd: each change is a transaction, followed by the health gate. */
async function openDaemon(g: { json?: boolean; progressJson?: boolean }): Promise<{ containers: ContainerVerbs; close(): Promise<void> }> {
  const { connectDaemon } = await import('../dbus-backend.js');
  const d = await connectDaemon();
  const view = progressView({ json: g.json ?? false, jsonLines: g.progressJson ?? false });
  const tx = { progress: view.sink };
  const containers: ContainerVerbs = {
    install: (image, opts) => d.containerInstall(image, opts, tx),
    update: (name) => d.containerChange('Update', name, tx),
    rollback: (name) => d.containerChange('Rollback', name, tx),
    uninstall: (name) => d.containerChange('Uninstall', name, tx),
    list: () => d.containerList() as ReturnType<ContainerVerbs['list']>,
    // Garbage collection needs no daemon state: it runs here, under the sysroot lock.
    gc: async () => {
      const [{ openLocalHost }, { SystemContainers }] = await Promise.all([import('../local-host.js'), import('../../containers/lifecycle.js')]);
      return new SystemContainers(await openLocalHost('/'), { units: null }).gc();
    },
  };
  return {
    containers,
    close: async () => {
      view.done();
      await d.close();
    },
  };
}

function parseProbe(o: { probeHttp?: string; probeCmd?: string }): HealthProbe | undefined {
  if (o.probeHttp && o.probeCmd) throw new InvalidArgumentError('give --probe-http or --probe-cmd, not both', { field: 'probe' });
  if (o.probeHttp) {
    if (!/^https?:\/\/\S+$/.test(o.probeHttp)) throw new InvalidArgumentError(`--probe-http wants an http(s) URL, got ${JSON.stringify(o.probeHttp)}`, { field: 'probe-http' });
    return { http: o.probeHttp };
  }
  return o.probeCmd ? { command: ['/bin/sh', '-c', o.probeCmd] } : undefined;
}

function parseSet(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`--set wants KEY=VALUE, got ${JSON.stringify(v)}`, { field: 'set', value: v });
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export const registerContainer: Registrar = (program: Command, ctx: CliContext) => {
  const cmd = program
    .command('container')
    .description('system containers: images run by runc under systemd units, versioned with the host')
    .option('--live', 'with --sysroot: also apply the change through this system\'s systemd');
  const run = <A extends unknown[]>(fn: (c: Awaited<ReturnType<typeof open>>['containers'], ...args: A) => Promise<{ message: string } | unknown>) =>
    action(ctx, async (...args: A) => {
      const o = await open(ctx);
      try {
        const r = await fn(o.containers, ...args);
        if (ctx.globals().json) printJson(r);
        else process.stdout.write(`${(r as { message: string }).message}\n`);
      } finally {
        await o.close();
      }
    });

  cmd
    .command('install')
    .argument('<image>', 'image reference: [registry/]name[:tag][@sha256:digest]')
    .option('--name <name>', 'container name (default: the last part of the image name)')
    .option('--set <key=value>', 'template value (Atomic images) or environment variable (other images); repeatable', (v: string, p: string[] = []) => [...p, v])
    .option('--role <role>', 'stack role: network, runtime, engine, kubelet or other (start order)')
    .option('--probe-http <url>', 'health probe: this URL must answer 2xx (the health gate checks it after every change)')
    .option('--probe-cmd <command>', 'health probe: this shell command must exit 0')
    .description('pull an image, check it out, render its runtime config and unit, start it; a new revision')
    .action(
      run((c, image: string, o: { name?: string; set?: string[]; role?: string; probeHttp?: string; probeCmd?: string }) =>
        c.install(image, { name: o.name, values: parseSet(o.set), role: o.role, probe: parseProbe(o) }),
      ),
    );

  cmd
    .command('list')
    .description('the containers of the default revision, with their digests and unit states')
    .action(
      action(ctx, async () => {
        const o = await open(ctx);
        try {
          const list = await o.containers.list();
          if (ctx.globals().json) return printJson(list);
          if (list.length === 0) return void process.stdout.write('No system containers.\n');
          for (const c of list) process.stdout.write(`${c.name.padEnd(16)} ${c.image}  ${c.digest.slice(0, 19)}  ${c.role ?? '-'}  ${c.activeState ? `${c.activeState}/${c.subState}` : '(not applied)'}\n`);
        } finally {
          await o.close();
        }
      }),
    );

  cmd.command('update').argument('<name>').description('pull the newest digest of the same reference, switch to it, restart; a new revision').action(run((c, name: string) => c.update(name)));
  cmd.command('rollback').argument('<name>').description("go back to the container's previous digest and values; a new revision").action(run((c, name: string) => c.rollback(name)));
  cmd.command('uninstall').argument('<name>').description('stop and remove a container; a new revision').action(run((c, name: string) => c.uninstall(name)));
  cmd
    .command('resolve')
    .argument('<image>', 'image name as given to install: a short name or [registry/]name[:tag][@digest]')
    .description('what registries.conf makes of a name: the qualified name, the file and entry that decided it, the sources tried in order (reads this process\'s registries.conf; contacts no registry)')
    .action(
      action(ctx, async (image: string) => {
        const [{ planImage, endpointHost }, { formatReference }, { noteLegacyRegistriesYaml }] = await Promise.all([
          import('../../containers/image-source.js'),
          import('../../containers/reference.js'),
          import('../../containers/registries.js'),
        ]);
        const plan = planImage(image);
        const legacy = noteLegacyRegistriesYaml(() => {});
        const r = plan.resolution;
        const candidates = plan.candidates.map((c) => ({
          name: formatReference(c.name),
          registry: c.entry ? { prefix: c.entry.prefix, origin: c.entry.origin } : null,
          blocked: c.blocked,
          sources: c.sources.map((s) => ({ kind: s.kind, reference: formatReference(s.reference), endpoint: endpointHost(s.reference.registry), insecure: s.insecure })),
          skippedMirrors: c.skipped,
        }));
        if (ctx.globals().json) return printJson({ input: image, rationale: r.rationale, origin: r.origin, files: plan.files, candidates, warning: legacy });
        const how = { qualified: 'fully qualified', alias: `alias at ${r.origin}`, search: `unqualified-search-registries at ${r.origin}` }[r.rationale];
        const out: string[] = [`${image}: ${how}`];
        for (const c of candidates) {
          out.push(`  ${c.name}`);
          out.push(c.registry ? `    [[registry]] prefix "${c.registry.prefix}" at ${c.registry.origin}` : '    no [[registry]] matches: pulled from where it is named');
          if (c.blocked) out.push(`    BLOCKED: ${c.blocked}`);
          c.sources.forEach((s, i) => out.push(`    ${i + 1}. ${s.kind.padEnd(7)} ${s.reference}${s.endpoint !== s.reference.split('/')[0] ? ` (served by ${s.endpoint})` : ''}${s.insecure ? ' (insecure: plain HTTP allowed)' : ''}`));
          for (const m of c.skippedMirrors) out.push(`    skipped mirror ${m.location}: ${m.why}`);
        }
        out.push(`  files read: ${plan.files.length ? plan.files.join(', ') : '(none)'}`);
        if (legacy) out.push(legacy);
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );

  cmd
    .command('gc')
    .description('remove images, layers and checkouts that no revision references')
    .action(
      run(async (c) => {
        const r = await c.gc();
        return { ...r, message: `Removed ${r.images} images, ${r.layers} layers and ${r.checkouts} checkouts that no revision references` };
      }),
    );
};
