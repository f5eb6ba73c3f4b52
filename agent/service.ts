// io.atomhost.Agent1 on the system bus, on dbus-next's message level (the sender of each
// call is needed for authorization). One transaction at a time: a second change is
// refused naming the running one. Cancel stops a transaction; a caller that leaves the
// bus does not (its transaction finishes, and GetLastResult replays its Finished).
import dbus from 'dbus-next';
import { randomUUID } from 'node:crypto';
import { AtomhostError } from '../core/errors.js';
import type { HostApi, HostStatus, TxContext } from '../core/host-api.js';
import type { LocalHost } from '../core/local-host.js';
import { noProgress, task, type ProgressEvent } from '../core/progress.js';
import type { HealthProbe } from '../core/revision.js';
import type { SystemContainers } from '../containers/lifecycle.js';
import type { StackSupervisor, SupervisorEvent } from '../containers/supervisor.js';
import { authorize, isPrivileged } from './authz.js';
import { checkRemoteAdd, type RemoteAddRequest } from '../core/remotes.js';
import { redactError, redactJson } from './redact.js';
import { checkProbe } from '../core/values.js';
import { log } from './journal.js';
import { ContainerStartFailedError } from '../containers/errors.js';
import type { UpdateAgent } from '../core/updates/agent.js';
import type { AgentMetrics } from './metrics.js';
import { BUS_NAME, INTERFACE, MUTATING, OBJECT_PATH, encodeError, errorName, type FinishedResult } from './protocol.js';

const { Message, MessageType } = dbus;

interface Running {
  id: string;
  title: string;
  caller: string;
  started: string;
  abort: AbortController;
  /** Ends the transaction's metrics (agent/metrics.ts). */
  endMetrics?: (success: boolean, err?: unknown) => void;
}

const INTROSPECTION = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="${INTERFACE}">
    <method name="GetStatus"><arg type="s" direction="out"/></method>
    <method name="ListRevisions"><arg type="s" direction="out"/></method>
    <method name="ListRevisionPage"><arg name="limit" type="u" direction="in"/><arg name="before" type="s" direction="in"/><arg type="s" direction="out"/></method>
    <method name="Diff"><arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="out"/></method>
    <method name="GetLastResult"><arg type="s" direction="out"/><arg type="b" direction="out"/><arg type="s" direction="out"/></method>
    <method name="CheckUpdate"><arg name="preview" type="b" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Upgrade"><arg name="options" type="a{sv}" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Deploy"><arg name="target" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Rebase"><arg name="refspec" type="s" direction="in"/><arg name="osname" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Rollback"><arg name="transaction" type="s" direction="out"/></method>
    <method name="KernelArgs"><arg name="append" type="as" direction="in"/><arg name="delete" type="as" direction="in"/><arg name="replace" type="as" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Cleanup"><arg name="rollback" type="b" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="SetPinned"><arg name="index" type="u" direction="in"/><arg name="pinned" type="b" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="ContainerInstall"><arg name="image" type="s" direction="in"/><arg name="options" type="a{ss}" direction="in"/><arg name="values" type="a{ss}" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="ContainerUpdate"><arg name="name" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="ContainerRollback"><arg name="name" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="ContainerUninstall"><arg name="name" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="ContainerList"><arg type="s" direction="out"/></method>
    <method name="StackStatus"><arg type="s" direction="out"/></method>
    <method name="RestartRole"><arg name="role" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="RemoteAdd"><arg name="request" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="RemoteList"><arg type="s" direction="out"/></method>
    <method name="RemoteDelete"><arg name="name" type="s" direction="in"/><arg name="transaction" type="s" direction="out"/></method>
    <method name="Cancel"/>
    <method name="GetUpdates"><arg type="s" direction="out"/></method>
    <method name="UpdatesCheck"><arg type="s" direction="out"/></method>
    <method name="UpdatesPause"><arg type="s" direction="out"/></method>
    <method name="UpdatesResume"><arg type="s" direction="out"/></method>
    <property name="Status" type="s" access="read"/>
    <signal name="TaskBegin"><arg name="transaction" type="s"/><arg name="task" type="s"/></signal>
    <signal name="TaskEnd"><arg name="transaction" type="s"/><arg name="task" type="s"/></signal>
    <signal name="Message"><arg name="transaction" type="s"/><arg name="text" type="s"/></signal>
    <signal name="PercentProgress"><arg name="transaction" type="s"/><arg name="text" type="s"/><arg name="percent" type="u"/></signal>
    <signal name="DownloadProgress"><arg name="transaction" type="s"/><arg name="bytes" type="t"/><arg name="fetched" type="u"/><arg name="requested" type="u"/></signal>
    <signal name="Finished"><arg name="transaction" type="s"/><arg name="success" type="b"/><arg name="payload" type="s"/></signal>
  </interface>
</node>`;

/** Each method's in-signature, read from the introspection: a call with other types is refused before it runs. */
const SIGNATURES: Record<string, string> = Object.fromEntries(
  [...INTROSPECTION.matchAll(/<method name="(\w+)">(.*?)<\/method>|<method name="(\w+)"\/>/g)].map((m) => [
    m[1] ?? m[3],
    [...(m[2] ?? '').matchAll(/type="([^"]+)" direction="in"/g)].map((a) => a[1]).join(''),
  ]),
);
/** No string argument may be larger than this (refs, names, values: all far smaller). */
const MAX_ARG = 64 * 1024;

/** The RemoteAdd request with only the fields and types it may have. */
function remoteAddRequest(v: unknown): RemoteAddRequest {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  const strs = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
  const keys = o.gpgKeys ?? [];
  if (typeof o.name !== 'string' || typeof o.url !== 'string' || !strs(o.signVerify ?? []) || !Array.isArray(keys) || !keys.every((k) => k && typeof k.source === 'string' && typeof k.data === 'string')) {
    throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', 'RemoteAdd: request must be {name, url, gpgKeys?: [{source, data}], signVerify?: [string], noVerify?: boolean}');
  }
  return { name: o.name, url: o.url, gpgKeys: keys as RemoteAddRequest['gpgKeys'], signVerify: (o.signVerify ?? []) as string[], noVerify: o.noVerify === true };
}

function checkArgs(member: string, signature: string | undefined, body: unknown[]): void {
  const want = SIGNATURES[member];
  if (want === undefined) throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `no method ${member} on ${INTERFACE}`);
  if ((signature ?? '') !== want) throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `${member} takes (${want}), not (${signature ?? ''})`);
  const big = (v: unknown): boolean =>
    typeof v === 'string' ? v.length > MAX_ARG : Array.isArray(v) ? v.some(big) : v && typeof v === 'object' ? Object.entries(v).some(([k, x]) => big(k) || big(x)) : false;
  if (body.some(big)) throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `${member}: an argument is larger than ${MAX_ARG} bytes`);
}

export class AgentService {
  readonly #bus: dbus.MessageBus;
  readonly #host: LocalHost & HostApi;
  #running: Running | null = null;
  #last: FinishedResult | null = null;
  #statusCache = '{}';
  #updates: UpdateAgent | null = null;
  #metrics: AgentMetrics | null = null;

  readonly #stack: StackSupervisor | null;
  readonly #containers: ((tx: TxContext) => Promise<SystemContainers>) | null;

  constructor(bus: dbus.MessageBus, host: LocalHost, stack: { supervisor: StackSupervisor; containers: (tx: TxContext) => Promise<SystemContainers> } | null = null) {
    this.#bus = bus;
    this.#host = host;
    this.#stack = stack?.supervisor ?? null;
    this.#containers = stack?.containers ?? null;
  }

  /** The update agent (core/updates/agent.ts): its state goes into Status and GetUpdates. */
  attachUpdates(agent: UpdateAgent): void {
    this.#updates = agent;
  }

  /** Transactions and live gates are counted there (agent/metrics.ts); it reads the cached status. */
  attachMetrics(metrics: AgentMetrics): void {
    this.#metrics = metrics;
    metrics.readFrom({ status: () => this.#statusSnapshot(), updates: () => this.#updates?.report() ?? null });
  }

  #statusSnapshot(): HostStatus | null {
    const s = JSON.parse(this.#statusCache) as Partial<HostStatus>;
    return s.status ? (s as HostStatus) : null;
  }

  /** The update agent's state changed: Status is read again (not during a transaction, which refreshes at its end). */
  updatesChanged(): void {
    if (!this.#running) void this.#refreshStatus().catch(() => {});
    else {
      const s = JSON.parse(this.#statusCache) as HostStatus;
      s.status.updates = this.#updates?.report() ?? null;
      this.#statusCache = JSON.stringify(s);
    }
  }

  /** Runs fn as a transaction of the daemon (refused when one runs) and resolves with its result. */
  runTransaction<T>(title: string, fn: (tx: TxContext) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      try {
        this.#begin(title, 'update agent', (tx) => fn(tx).then((r) => (resolve(r), r), (err: unknown) => { reject(err); throw err; }));
      } catch (err) {
        reject(err);
      }
    });
  }

  /** Supervision events become journal entries with the unit's last lines. */
  static logEvent(e: SupervisorEvent): void {
    const fields = { UNIT_NAME: e.unit, ATOMHOST_UNIT: e.unit, ATOMHOST_ACTIVE_STATE: e.state.activeState, ATOMHOST_RESTARTS: e.state.restarts };
    if (e.kind === 'unit-recovered') return log('info', 'unitRecovered', `${e.unit} is active again`, fields);
    const tail = e.journal.length ? `; last lines:\n${e.journal.join('\n')}` : '';
    if (e.kind === 'restart-loop') log('err', 'restartLoop', `${e.unit} is in a restart loop (${e.state.restarts} restarts)${tail}`, { ...fields, PRIORITY: 3 });
    else log('err', 'unitFailed', `${e.unit} failed (${e.state.subState}${e.state.result ? `, ${e.state.result}` : ''})${tail}`, { ...fields, PRIORITY: 3 });
  }

  async start(): Promise<void> {
    const outcome = await this.#host.recover();
    if (outcome) log('info', 'recovered', `recovered at start: ${outcome}`);
    await this.#refreshStatus();
    this.#bus.addMethodHandler((msg: dbus.Message) => this.#dispatch(msg));
    const reply = await this.#bus.requestName(BUS_NAME, 0);
    if (reply !== 1 && reply !== 4) throw new Error(`cannot own ${BUS_NAME} (reply ${reply})`);
    log('info', 'started', `atomhostd serving ${this.#host.sysroot.path}`, { ATOMHOST_SYSROOT: this.#host.sysroot.path });
    await this.#stack?.rewatch().catch((err: unknown) => log('warning', 'started', `cannot watch the stack's units: ${(err as Error).message}`));
  }

  /**
   * The Host object. While a transaction runs, the sysroot is busy (its calls are
   * serialized behind the pull or deploy), so readers get the last status with the
   * running transaction in it instead of waiting for the transaction to end.
   */
  async #refreshStatus(): Promise<string> {
    const transaction = this.#running ? { title: this.#running.title, caller: this.#running.caller, started: this.#running.started } : null;
    const s = transaction ? (JSON.parse(this.#statusCache) as HostStatus) : await this.#host.status();
    s.status.transaction = transaction;
    s.status.updates = this.#updates?.report() ?? null;
    this.#statusCache = JSON.stringify(s);
    return this.#statusCache;
  }

  #dispatch(msg: dbus.Message): boolean {
    if (msg.type !== MessageType.METHOD_CALL || msg.path !== OBJECT_PATH) return false;
    const reply = (signature: string, body: unknown[]) => this.#bus.send(Message.newMethodReturn(msg, signature, body));
    const fail = (err: unknown) => {
      const code = err instanceof AtomhostError ? err.code : 'AH_ERR_FAILED';
      // (dbus-next's typings have newError's parameters wrong; the runtime takes the call message.)
      const newError = Message.newError as unknown as (call: dbus.Message, name: string, text: string) => dbus.Message;
      this.#bus.send(newError(msg, errorName(code), encodeError(err)));
    };
    if (msg.interface === 'org.freedesktop.DBus.Introspectable' && msg.member === 'Introspect') {
      reply('s', [INTROSPECTION]);
      return true;
    }
    if (msg.interface === 'org.freedesktop.DBus.Properties') {
      const status = async () => ((await isPrivileged(this.#bus, msg.sender ?? '')) ? this.#statusCache : redactJson(this.#statusCache));
      if (msg.member === 'Get' && msg.body[1] === 'Status') status().then((s) => reply('v', [new dbus.Variant('s', s)]), fail);
      else if (msg.member === 'GetAll') status().then((s) => reply('a{sv}', [{ Status: new dbus.Variant('s', s) }]), fail);
      else fail(new AtomhostError('AH_ERR_INVALID_ARGUMENT', `no property ${msg.body[1]}`));
      return true;
    }
    if (msg.interface && msg.interface !== INTERFACE) return false;
    this.#handle(msg, reply).catch(fail);
    return true;
  }

  async #handle(msg: dbus.Message, reply: (sig: string, body: unknown[]) => void): Promise<void> {
    const member = msg.member ?? '';
    const sender = msg.sender ?? '';
    const b = msg.body as unknown[];
    checkArgs(member, msg.signature, b);
    if (MUTATING.has(member)) await authorize(this.#bus, sender, member);
    // Reads: a caller who may not change the host sees no values, probes or journal lines.
    const privileged = MUTATING.has(member) || (await isPrivileged(this.#bus, sender));
    const shown = (json: string) => (privileged ? json : redactJson(json));
    const h = this.#host;
    switch (member) {
      case 'GetStatus':
        return reply('s', [shown(await this.#refreshStatus())]);
      case 'ListRevisions':
        return reply('s', [shown(JSON.stringify((await h.listRevisions()).revisions))]);
      case 'ListRevisionPage':
        return reply('s', [shown(JSON.stringify(await h.listRevisions({ limit: Number(b[0]) || undefined, before: String(b[1]) || undefined })))]);
      case 'Diff':
        return reply('s', [shown(JSON.stringify(await h.diff(String(b[0]), String(b[1]))))]);
      case 'GetLastResult':
        return reply('sbs', this.#last ? [this.#last.transaction, this.#last.success, shown(this.#last.payload)] : ['', false, '']);
      case 'Cancel':
        this.#running?.abort.abort();
        return reply('', []);
      case 'GetUpdates':
        return reply('s', [shown(JSON.stringify(this.#requireUpdates().report()))]);
      case 'UpdatesCheck':
      case 'UpdatesPause':
      case 'UpdatesResume': {
        const u = this.#requireUpdates();
        const r = member === 'UpdatesCheck' ? await u.check() : member === 'UpdatesPause' ? await u.pause() : await u.resume();
        return reply('s', [JSON.stringify(r)]);
      }
      case 'CheckUpdate':
        return reply('s', [this.#begin(`check for updates`, sender, (tx) => h.checkUpdate({ preview: Boolean(b[0]) }, tx))]);
      case 'Upgrade':
        return reply('s', [this.#begin('upgrade', sender, (tx) => h.upgrade(tx))]);
      case 'Deploy':
        return reply('s', [this.#begin(`deploy ${b[0]}`, sender, (tx) => h.deploy(String(b[0]), tx))]);
      case 'Rebase':
        return reply('s', [this.#begin(`rebase ${b[0]}`, sender, (tx) => h.rebase(String(b[0]), { osname: String(b[1]) || undefined }, tx))]);
      case 'Rollback':
        return reply('s', [this.#begin('rollback', sender, (tx) => h.rollback(tx))]);
      case 'KernelArgs':
        return reply('s', [this.#begin('kargs', sender, (tx) => h.kargs({ append: b[0] as string[], delete: b[1] as string[], replace: b[2] as string[] }, tx))]);
      case 'Cleanup':
        return reply('s', [this.#begin('cleanup', sender, (tx) => h.cleanup({ rollback: Boolean(b[0]) }, tx))]);
      case 'ContainerInstall': {
        const o = b[1] as Record<string, string>;
        const unknown = Object.keys(o).filter((k) => !['name', 'role', 'probeHttp', 'probeCommand'].includes(k));
        if (unknown.length) throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `ContainerInstall: unknown option ${unknown.join(', ')} (name, role, probeHttp, probeCommand)`);
        let probe: HealthProbe | undefined;
        if (o.probeHttp) probe = checkProbe({ http: o.probeHttp }, 'probeHttp');
        else if (o.probeCommand) {
          let command: unknown;
          try {
            command = JSON.parse(o.probeCommand);
          } catch {
            throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', 'probeCommand must be a JSON list of strings');
          }
          probe = checkProbe({ command }, 'probeCommand');
        }
        const opts = { name: o.name || undefined, role: o.role || undefined, values: b[2] as Record<string, string>, probe };
        return reply('s', [this.#beginGated(`container install ${opts.name ?? b[0]}`, sender, (c) => c.install(String(b[0]), opts))]);
      }
      case 'ContainerUpdate':
        return reply('s', [this.#beginGated(`container update ${b[0]}`, sender, (c) => c.update(String(b[0])))]);
      case 'ContainerRollback':
        return reply('s', [this.#beginGated(`container rollback ${b[0]}`, sender, (c) => c.rollback(String(b[0])))]);
      case 'ContainerUninstall':
        return reply('s', [this.#beginGated(`container uninstall ${b[0]}`, sender, (c) => c.uninstall(String(b[0])))]);
      case 'ContainerList':
        return reply('s', [shown(JSON.stringify(await (await this.#requireStack().containers({})).list()))]);
      case 'StackStatus':
        // Only a caller who may change the host makes it run the probes now; the others get the last look (rate-limited).
        return reply('s', [shown(JSON.stringify(await this.#requireStack().supervisor.status({ probes: privileged ? 'run' : 'cached' })))]);
      case 'RestartRole':
        return reply('s', [this.#begin(`restart role ${b[0]}`, sender, () => this.#requireStack().supervisor.restartRole(String(b[0])))]);
      case 'SetPinned':
        return reply('s', [this.#begin(b[1] ? 'pin' : 'unpin', sender, (tx) => h.setPinned(Number(b[0]), Boolean(b[1]), tx))]);
      case 'RemoteAdd': {
        // A JSON request (RemoteAddRequest): key contents come from the caller, never paths read as root.
        let req: unknown;
        try {
          req = JSON.parse(String(b[0]));
        } catch {
          throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', 'RemoteAdd: the request is not JSON');
        }
        // A transaction like every change: never alongside another one on the sysroot, and journaled with its caller.
        const request = remoteAddRequest(req);
        checkRemoteAdd(request);
        return reply('s', [this.#begin(`remote add ${request.name}`, sender, () => h.remoteAdd(request))]);
      }
      case 'RemoteList':
        return reply('s', [JSON.stringify(await h.remoteList())]);
      case 'RemoteDelete':
        return reply('s', [this.#begin(`remote delete ${b[0]}`, sender, () => h.remoteDelete(String(b[0])))]);
      default:
        throw new AtomhostError('AH_ERR_INVALID_ARGUMENT', `no method ${member} on ${INTERFACE}`);
    }
  }

  #requireUpdates(): UpdateAgent {
    if (!this.#updates) throw new AtomhostError('AH_ERR_UNSUPPORTED', 'atomhostd runs no update agent');
    return this.#updates;
  }

  #requireStack(): { supervisor: StackSupervisor; containers: (tx: TxContext) => Promise<SystemContainers> } {
    if (!this.#stack || !this.#containers) throw new AtomhostError('AH_ERR_SYSTEMD', 'atomhostd has no connection to systemd: the stack cannot be supervised');
    return { supervisor: this.#stack, containers: this.#containers };
  }

  /**
   * A container change as a transaction, followed by the health gate: a change that
   * leaves the stack unhealthy is undone (the last healthy revision is put back live)
   * and the transaction fails with the failing check's output.
   */
  #beginGated(title: string, caller: string, fn: (c: SystemContainers) => Promise<{ revision: string | null }>): string {
    const { supervisor, containers } = this.#requireStack();
    return this.#begin(title, caller, async (tx) => {
      const result = await fn(await containers(tx));
      try {
        const out = await task(tx.progress ?? noProgress, 'Checking the health of the stack', () => supervisor.gateChange(title, 'live', tx.signal));
        this.#metrics?.gateResult('live', out.decision?.action ?? 'none');
        log('info', 'healthPassed', `${title}: ${out.message}`, { ATOMHOST_REVISION: result.revision ?? undefined });
      } catch (err) {
        const d = (err as AtomhostError).details ?? {};
        if (d.fallback) this.#metrics?.gateResult('live', 'fall-back', { reboot: Boolean(d.reboot), ms: d.fallbackMs as number | null });
        else this.#metrics?.gateResult('live', 'revision' in d ? 'give-up' : 'error');
        log('err', 'autoRollback', (err as Error).message, { PRIORITY: 3, ATOMHOST_REVISION: result.revision ?? undefined, ATOMHOST_FALLBACK: d.fallback ? String(d.fallback) : undefined, ATOMHOST_REASON: (err as Error).message.split('\n')[0], ATOMHOST_FALLBACK_MS: d.fallbackMs != null ? Number(d.fallbackMs) : undefined });
        throw err;
      }
      return result;
    });
  }

  /** Starts a transaction and returns its id at once; its end is the Finished signal. */
  #begin(title: string, caller: string, fn: (tx: TxContext) => Promise<unknown>): string {
    if (this.#running) throw new AtomhostError('AH_ERR_BUSY', `transaction in progress: ${this.#running.title} started by ${this.#running.caller} at ${this.#running.started}`, { details: { title: this.#running.title, caller: this.#running.caller } });
    const id = randomUUID();
    const running: Running = { id, title, caller, started: new Date().toISOString(), abort: new AbortController(), endMetrics: this.#metrics?.transactionStarted(title) };
    this.#running = running;
    log('info', 'transactionStarted', `${title} started by ${caller}`, { ATOMHOST_TRANSACTION: id, ATOMHOST_CALLER: caller });
    const tx: TxContext = { signal: running.abort.signal, progress: (e) => this.#progress(id, e) };
    void this.#refreshStatus().catch(() => {});
    // Let the method reply (the id) go out before the first signal.
    setImmediate(() => {
      fn(tx).then(
        (result) => this.#finish(running, true, JSON.stringify(result ?? null), (result as { revision?: string } | null)?.revision),
        (err: unknown) => this.#finish(running, false, encodeError(err), undefined, err),
      );
    });
    return id;
  }

  #progress(id: string, e: ProgressEvent): void {
    const sig = (name: string, signature: string, body: unknown[]) => this.#bus.send(Message.newSignal(OBJECT_PATH, INTERFACE, name, signature, [id, ...body]));
    switch (e.type) {
      case 'task-begin':
        return sig('TaskBegin', 'ss', [e.task]);
      case 'task-end':
        return sig('TaskEnd', 'ss', [e.task]);
      case 'message':
        return sig('Message', 'ss', [e.text]);
      case 'percent':
        return sig('PercentProgress', 'ssu', [e.text, Math.round(e.percent)]);
      case 'download':
        return sig('DownloadProgress', 'stuu', [BigInt(Math.max(0, Math.round(e.bytes))), e.fetched, e.requested]);
    }
  }

  async #finish(running: Running, success: boolean, payload: string, revision?: string, err?: unknown): Promise<void> {
    this.#running = null;
    this.#last = { transaction: running.id, success, payload };
    running.endMetrics?.(success, err);
    const fields = { ATOMHOST_TRANSACTION: running.id, ATOMHOST_REVISION: revision, ATOMHOST_CALLER: running.caller };
    if (success) log('info', 'transactionSucceeded', `${running.title} succeeded`, fields);
    else log('err', 'transactionFailed', `${running.title} failed: ${err instanceof Error ? err.message : String(err)}`, { ...fields, PRIORITY: 3, ATOMHOST_ERROR: err instanceof AtomhostError ? err.code : 'AH_ERR_FAILED' });
    const restored = startFailure(err);
    if (restored) log('warning', 'containerRestored', `${restored.container} failed to start (${restored.reason}); the previous unit and container were restored and no revision was made`, { ...fields, PRIORITY: 4, ATOMHOST_CONTAINER: restored.container, ATOMHOST_REASON: restored.reason, ATOMHOST_LAST_LINES: restored.journal.join('\n') || undefined });
    await this.#refreshStatus().catch(() => {});
    // Signals go to every listener: the payload is redacted; the caller reads it whole with GetLastResult.
    this.#bus.send(Message.newSignal(OBJECT_PATH, INTERFACE, 'Finished', 'sbs', [running.id, success, success ? redactJson(payload) : redactError(payload)]));
  }
}

/** The container start failure behind a failed transaction, if any (it may be wrapped as a cause). */
function startFailure(err: unknown): ContainerStartFailedError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ContainerStartFailedError) return e;
  }
  return undefined;
}
