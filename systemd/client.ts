// The one systemd client: org.freedesktop.systemd1 over the system bus (dbus-next).
// Jobs are waited for through JobRemoved, states read from the unit's properties; no
// systemctl subprocess. Reading a unit's journal is the one thing done with journalctl.
import dbus from 'dbus-next';
import { AtomhostError } from '../core/errors.js';
import { run } from '../core/exec.js';
import type { UnitManager, UnitState } from '../core/unit-manager.js';

const DEST = 'org.freedesktop.systemd1';
const PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';

type Iface = Record<string, (...args: unknown[]) => Promise<unknown>> & { on(ev: string, fn: (...a: unknown[]) => void): void; removeListener(ev: string, fn: (...a: unknown[]) => void): void };

export class SystemdClient implements UnitManager {
  readonly #bus: dbus.MessageBus;
  readonly #manager: Iface;
  readonly #jobs = new Map<string, (result: string) => void>();
  /** Jobs that finished before their caller learnt their path (reply and signal in one read). */
  readonly #early = new Map<string, string>();

  private constructor(bus: dbus.MessageBus, manager: Iface) {
    this.#bus = bus;
    this.#manager = manager;
    manager.on('JobRemoved', (_id: unknown, job: unknown, _unit: unknown, result: unknown) => {
      const done = this.#jobs.get(String(job));
      if (done) {
        this.#jobs.delete(String(job));
        done(String(result));
      } else {
        this.#early.set(String(job), String(result));
        if (this.#early.size > 256) this.#early.delete(this.#early.keys().next().value!);
      }
    });
  }

  static async connect(bus: dbus.MessageBus = dbus.systemBus()): Promise<SystemdClient> {
    try {
      const obj = await bus.getProxyObject(DEST, PATH);
      const manager = obj.getInterface(MANAGER) as unknown as Iface;
      await manager.Subscribe();
      return new SystemdClient(bus, manager);
    } catch (err) {
      bus.disconnect();
      throw new AtomhostError('AH_ERR_SYSTEMD', `cannot reach systemd on the system bus: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.#bus.disconnect();
  }

  async reload(): Promise<void> {
    await this.#manager.Reload();
  }

  async #job(verb: 'StartUnit' | 'StopUnit' | 'RestartUnit', unit: string): Promise<void> {
    let resolveResult!: (r: string) => void;
    const result = new Promise<string>((r) => (resolveResult = r));
    let job: string;
    try {
      job = String(await this.#manager[verb](unit, 'replace'));
    } catch (err) {
      throw new AtomhostError('AH_ERR_SYSTEMD', `${verb.replace('Unit', '').toLowerCase()} ${unit}: ${(err as Error).message}`, { cause: err, details: { unit } });
    }
    const early = this.#early.get(job);
    if (early !== undefined) {
      this.#early.delete(job);
      resolveResult(early);
    } else this.#jobs.set(job, resolveResult);
    const r = await result;
    if (r !== 'done') throw new AtomhostError('AH_ERR_SYSTEMD', `${verb.replace('Unit', '').toLowerCase()} ${unit}: job ${r}`, { details: { unit, result: r } });
  }

  start(unit: string): Promise<void> {
    return this.#job('StartUnit', unit);
  }
  async queueStart(unit: string): Promise<void> {
    try {
      await this.#manager.StartUnit(unit, 'replace');
    } catch (err) {
      throw new AtomhostError('AH_ERR_SYSTEMD', `start ${unit}: ${(err as Error).message}`, { cause: err, details: { unit } });
    }
  }
  stop(unit: string): Promise<void> {
    return this.#job('StopUnit', unit);
  }
  restart(unit: string): Promise<void> {
    return this.#job('RestartUnit', unit);
  }

  /** Forgets a unit's failure and start-limit count (before an explicit restart of a looping unit). */
  async resetFailed(unit: string): Promise<void> {
    await this.#manager.ResetFailedUnit(unit).catch(() => {});
  }

  async enable(unit: string): Promise<void> {
    await this.#manager.EnableUnitFiles([unit], false, true);
  }

  async disable(unit: string): Promise<void> {
    await this.#manager.DisableUnitFiles([unit], false);
  }

  async enableRuntime(unit: string): Promise<void> {
    await this.#manager.EnableUnitFiles([unit], true, true);
  }

  async disableRuntime(unit: string): Promise<void> {
    await this.#manager.DisableUnitFiles([unit], true);
  }

  async state(unit: string): Promise<UnitState> {
    const path = String(await this.#manager.LoadUnit(unit));
    const obj = await this.#bus.getProxyObject(DEST, path);
    const props = obj.getInterface('org.freedesktop.DBus.Properties') as unknown as Iface;
    const get = async (iface: string, name: string) => ((await props.Get(iface, name)) as dbus.Variant).value as unknown;
    const [activeState, subState] = await Promise.all([get('org.freedesktop.systemd1.Unit', 'ActiveState'), get('org.freedesktop.systemd1.Unit', 'SubState')]);
    let restarts = 0;
    let result: string | undefined;
    if (unit.endsWith('.service')) {
      [restarts, result] = (await Promise.all([get('org.freedesktop.systemd1.Service', 'NRestarts'), get('org.freedesktop.systemd1.Service', 'Result')])) as [number, string];
    }
    return { name: unit, activeState: String(activeState), subState: String(subState), restarts: Number(restarts), result };
  }

  /**
   * Calls onChange with a unit's new state whenever systemd says its properties changed
   * (PropertiesChanged on the unit object). Returns a function that stops watching.
   */
  async watch(unit: string, onChange: (s: UnitState) => void): Promise<() => void> {
    const path = String(await this.#manager.LoadUnit(unit));
    const obj = await this.#bus.getProxyObject(DEST, path);
    const props = obj.getInterface('org.freedesktop.DBus.Properties') as unknown as Iface;
    const handler = () => void this.state(unit).then(onChange, () => {});
    props.on('PropertiesChanged', handler);
    return () => props.removeListener('PropertiesChanged', handler);
  }

  async journal(unit: string, lines: number): Promise<string[]> {
    const r = await run('journalctl', ['-u', unit, '-n', String(lines), '-o', 'cat', '--no-pager']);
    return r.stdout.split('\n').filter(Boolean);
  }
}

export function connectSystemd(): Promise<SystemdClient> {
  return SystemdClient.connect();
}

/**
 * A unit's ActiveState, read with two plain calls (no Subscribe, no introspection: any
 * caller may ask, and the CLI stays lean); null when systemd cannot be asked.
 */
export async function readActiveState(bus: dbus.MessageBus, unit: string): Promise<string | null> {
  try {
    const unitPath = (await bus.call(new dbus.Message({ destination: DEST, path: PATH, interface: MANAGER, member: 'GetUnit', signature: 's', body: [unit] })))?.body[0];
    const reply = await bus.call(new dbus.Message({ destination: DEST, path: String(unitPath), interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: ['org.freedesktop.systemd1.Unit', 'ActiveState'] }));
    return String((reply?.body[0] as dbus.Variant).value);
  } catch {
    return null;
  }
}
