// HostApi over the system bus: the CLI's client of atomhostd. Verbs start a transaction,
// stream its signals into the progress sink, and end on its Finished signal; an error
// comes back as the same AtomhostError (same message, same exit code).
import type dbus from 'dbus-next';
import { BusClient, Message, MessageType, systemBus } from './bus-client.js';
import type { UpdatesReport } from '../core/updates/state.js';
import { AtomhostError } from '../core/errors.js';
import type { HostApi, HostStatus, KargsEdit, RevisionDiff, TransactionResult, TxContext, UpdatePreview } from '../core/host-api.js';
import type { HealthProbe, Revision, RevisionPage, RevisionPageQuery } from '../core/revision.js';
import type { StackStatus } from '../containers/supervisor.js';
import type { RemoteAddRequest, RemoteListEntry } from '../core/remotes.js';

export interface ContainerResultJson {
  message: string;
  revision: string;
}
import { BUS_NAME, INTERFACE, OBJECT_PATH, decodeError } from '../agent/protocol.js';

export class DaemonHost implements HostApi {
  readonly #bus: BusClient;
  /** Rejects when the connection fails (no bus socket): dbus-next leaves the calls pending then. */
  readonly #lost: Promise<never>;
  constructor(bus: BusClient, lost: Promise<never> = new Promise(() => {})) {
    this.#bus = bus;
    this.#lost = lost;
  }

  async #call(member: string, signature = '', body: unknown[] = [], retried = false): Promise<unknown[]> {
    try {
      const reply = await Promise.race([this.#bus.call(new Message({ destination: BUS_NAME, path: OBJECT_PATH, interface: INTERFACE, member, signature, body })), this.#lost]);
      return (reply?.body ?? []) as unknown[];
    } catch (err) {
      if (err instanceof AtomhostError) throw err;
      const e = err as { type?: string; text?: string; message?: string };
      if (e.type?.startsWith('io.atomhost.Error.')) throw decodeError(e.text ?? '');
      // The bus gives up on an activation after its service_start_timeout (25 s), while
      // systemd goes on starting the unit: a daemon that first finishes an interrupted
      // transaction (libostree's cleanup on a slow disk) can take longer. Wait for it once.
      if (!retried && e.type === 'org.freedesktop.DBus.Error.TimedOut') {
        const started = await this.#waitForOwner();
        if (started === 'up') return this.#call(member, signature, body, true);
        if (started === 'failed') throw new AtomhostError('AH_ERR_DAEMON', 'atomhostd.service failed to start; journalctl -u atomhostd says why (give --sysroot PATH to work without it)', { cause: err });
      }
      throw new AtomhostError('AH_ERR_DAEMON', `atomhostd did not answer (${e.text ?? e.message}); is atomhostd.service running? (give --sysroot PATH to work without it)`, { cause: err });
    }
  }

  /** Waits until atomhostd owns its name (it is still starting), its unit fails, or a deadline passes. */
  async #waitForOwner(): Promise<'up' | 'failed' | 'timeout'> {
    const seconds = Number(process.env.ATOMHOST_DAEMON_START_TIMEOUT_S ?? '') || 180;
    if (process.stderr.isTTY) process.stderr.write('atomhostd is still starting; waiting for it…\n');
    const deadline = Date.now() + seconds * 1000;
    // Loaded only on this slow path: a status through the daemon needs no systemd client.
    const { readActiveState } = await import('../systemd/client.js');
    while (Date.now() < deadline) {
      const reply = await this.#bus.call(new Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'NameHasOwner', signature: 's', body: [BUS_NAME] }));
      if (reply?.body[0] === true) return 'up';
      // A unit that failed (or was stopped) is not coming: say so now, not at the deadline.
      // readActiveState only calls methods, which BusClient does as dbus-next's MessageBus.
      const state = await readActiveState(this.#bus as unknown as dbus.MessageBus, 'atomhostd.service');
      if (state === 'failed' || state === 'inactive') return 'failed';
      await new Promise((r) => setTimeout(r, 250));
    }
    return 'timeout';
  }

  /** Starts a transaction and follows its signals until Finished. */
  async #transaction<T>(member: string, signature: string, body: unknown[], ctx: TxContext = {}): Promise<T> {
    const match = `type='signal',sender='${BUS_NAME}',interface='${INTERFACE}',path='${OBJECT_PATH}'`;
    // A daemon that exits mid-transaction (a crash, kill -9) ends the wait at once.
    const owner = `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`;
    for (const rule of [match, owner]) {
      await Promise.race([this.#bus.call(new Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'AddMatch', signature: 's', body: [rule] })), this.#lost]);
    }
    let id: string | null = null;
    const early: dbus.Message[] = [];
    let settle!: { resolve: (v: T) => void; reject: (e: unknown) => void };
    const done = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
    const onSignal = (msg: dbus.Message) => {
      if (msg.type === MessageType.SIGNAL && msg.member === 'NameOwnerChanged' && msg.body[0] === BUS_NAME && !msg.body[2]) {
        return settle.reject(new AtomhostError('AH_ERR_DAEMON', `atomhostd exited during the transaction${id ? ` ${id}` : ''}; see journalctl -u atomhostd (an interrupted change is finished or undone when it starts again)`));
      }
      if (msg.type !== MessageType.SIGNAL || msg.interface !== INTERFACE) return;
      const [tx, ...rest] = msg.body as unknown[];
      if (id === null) return void early.push(msg);
      if (tx !== id) return;
      const p = ctx.progress;
      switch (msg.member) {
        case 'TaskBegin':
          return p?.({ type: 'task-begin', task: String(rest[0]) });
        case 'TaskEnd':
          return p?.({ type: 'task-end', task: String(rest[0]) });
        case 'Message':
          return p?.({ type: 'message', text: String(rest[0]) });
        case 'PercentProgress':
          return p?.({ type: 'percent', text: String(rest[0]), percent: Number(rest[1]) });
        case 'DownloadProgress':
          return p?.({ type: 'download', bytes: Number(rest[0]), fetched: Number(rest[1]), requested: Number(rest[2]) });
        case 'Finished':
          // The signal is redacted for every listener; the caller reads its own result whole.
          return void this.#call('GetLastResult').then(
            ([lastId, ok, payload]) => {
              const text = lastId === id ? String(payload) : String(rest[1]);
              const success = lastId === id ? Boolean(ok) : Boolean(rest[0]);
              if (success) settle.resolve(JSON.parse(text) as T);
              else settle.reject(decodeError(text));
            },
            (err: unknown) => settle.reject(err),
          );
      }
    };
    this.#bus.on('message', onSignal);
    const onAbort = () => void this.#call('Cancel').catch(() => {});
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      id = String((await this.#call(member, signature, body))[0]);
      for (const m of early.splice(0)) onSignal(m);
      return await done;
    } finally {
      this.#bus.removeListener('message', onSignal);
      ctx.signal?.removeEventListener('abort', onAbort);
    }
  }

  async status(): Promise<HostStatus> {
    return JSON.parse(String((await this.#call('GetStatus'))[0])) as HostStatus;
  }
  async listRevisions(page: RevisionPageQuery = {}): Promise<RevisionPage> {
    return JSON.parse(String((await this.#call('ListRevisionPage', 'us', [page.limit ?? 0, page.before ?? '']))[0])) as RevisionPage;
  }
  async diff(from: string, to: string): Promise<RevisionDiff> {
    return JSON.parse(String((await this.#call('Diff', 'ss', [from, to]))[0])) as RevisionDiff;
  }
  checkUpdate(opts: { preview: boolean }, ctx?: TxContext): Promise<UpdatePreview> {
    return this.#transaction('CheckUpdate', 'b', [opts.preview], ctx);
  }
  upgrade(ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('Upgrade', 'a{sv}', [{}], ctx);
  }
  deploy(target: string, ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('Deploy', 's', [target], ctx);
  }
  rebase(refspec: string, opts: { osname?: string }, ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('Rebase', 'ss', [refspec, opts.osname ?? ''], ctx);
  }
  rollback(ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('Rollback', '', [], ctx);
  }
  kargs(edit: KargsEdit, ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('KernelArgs', 'asasas', [edit.append ?? [], edit.delete ?? [], edit.replace ?? []], ctx);
  }
  cleanup(opts: { rollback: boolean }, ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('Cleanup', 'b', [opts.rollback], ctx);
  }
  setPinned(index: number, pinned: boolean, ctx?: TxContext): Promise<TransactionResult> {
    return this.#transaction('SetPinned', 'ub', [index, pinned], ctx);
  }
  async cancel(): Promise<void> {
    await this.#call('Cancel');
  }
  remoteAdd(req: RemoteAddRequest): Promise<RemoteListEntry> {
    return this.#transaction('RemoteAdd', 's', [JSON.stringify(req)]);
  }
  async remoteList(): Promise<RemoteListEntry[]> {
    return JSON.parse(String((await this.#call('RemoteList'))[0])) as RemoteListEntry[];
  }
  async remoteDelete(name: string): Promise<void> {
    await this.#transaction('RemoteDelete', 's', [name]);
  }

  // ---- system containers and the stack (each change is followed by the health gate) ----
  containerInstall(image: string, opts: { name?: string; role?: string; values?: Record<string, string>; probe?: HealthProbe }, ctx?: TxContext): Promise<ContainerResultJson> {
    const o: Record<string, string> = {};
    if (opts.name) o.name = opts.name;
    if (opts.role) o.role = opts.role;
    if (opts.probe && 'http' in opts.probe) o.probeHttp = opts.probe.http;
    else if (opts.probe) o.probeCommand = JSON.stringify(opts.probe.command);
    return this.#transaction('ContainerInstall', 'sa{ss}a{ss}', [image, o, opts.values ?? {}], ctx);
  }
  containerChange(verb: 'Update' | 'Rollback' | 'Uninstall', name: string, ctx?: TxContext): Promise<ContainerResultJson> {
    return this.#transaction(`Container${verb}`, 's', [name], ctx);
  }
  async containerList(): Promise<unknown[]> {
    return JSON.parse(String((await this.#call('ContainerList'))[0])) as unknown[];
  }
  async stackStatus(): Promise<StackStatus> {
    return JSON.parse(String((await this.#call('StackStatus'))[0])) as StackStatus;
  }
  restartRole(role: string, ctx?: TxContext): Promise<{ message: string }> {
    return this.#transaction('RestartRole', 's', [role], ctx);
  }
  /** The update agent: GetUpdates (anyone), UpdatesCheck|Pause|Resume (changes). */
  async updates(member: 'GetUpdates' | 'UpdatesCheck' | 'UpdatesPause' | 'UpdatesResume'): Promise<UpdatesReport> {
    return JSON.parse(String((await this.#call(member))[0])) as UpdatesReport;
  }
  async close(): Promise<void> {
    this.#bus.disconnect();
  }
}

export async function connectDaemon(): Promise<DaemonHost> {
  let bus: BusClient;
  try {
    bus = systemBus();
  } catch (err) {
    throw new AtomhostError('AH_ERR_DAEMON', `no system bus: ${(err as Error).message}; give --sysroot PATH to work on a sysroot directly`, { cause: err });
  }
  // A connection error (no socket, refused) fails the first call instead of crashing the
  // process; without this the call would wait forever and Node exit 13 with no word.
  const lost = new Promise<never>((_, reject) => bus.on('error', (err: Error) => reject(new AtomhostError('AH_ERR_DAEMON', `no system bus (${err.message}); give --sysroot PATH to work on a sysroot directly`, { cause: err }))));
  lost.catch(() => {});
  return new DaemonHost(bus, lost);
}
