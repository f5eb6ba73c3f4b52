// What the host code needs from systemd, as an interface: atomhostd implements it over
// org.freedesktop.systemd1 (systemd/), so container and stack code never spawns systemctl.

export interface UnitState {
  name: string;
  activeState: string;
  subState: string;
  /** Restarts since the unit was started (NRestarts). */
  restarts: number;
  result?: string;
}

export interface UnitManager {
  /** Reloads unit files after they were written (daemon-reload). */
  reload(): Promise<void>;
  /** Starts a unit and waits for its job to finish; rejects if the job fails. */
  start(unit: string): Promise<void>;
  stop(unit: string): Promise<void>;
  /** Queues a start job without waiting for it (at boot, from a unit the job waits for). */
  queueStart?(unit: string): Promise<void>;
  restart(unit: string): Promise<void>;
  enable?(unit: string): Promise<void>;
  /** Clears a unit's failed state and its restart counter (NRestarts). */
  resetFailed?(unit: string): Promise<void>;
  disable?(unit: string): Promise<void>;
  /** Enabled until the next boot only (links under /run): host units of the stack. */
  enableRuntime?(unit: string): Promise<void>;
  disableRuntime?(unit: string): Promise<void>;
  state(unit: string): Promise<UnitState>;
  /** The unit's last journal lines, for error reports. */
  journal?(unit: string, lines: number): Promise<string[]>;
}
