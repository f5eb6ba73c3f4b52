// A real host in qemu (software emulation: KVM does not work on this machine kind). The
// guest boots its disk through GRUB, its kernel and initramfs, ostree-prepare-root and a
// real systemd. Commands reach it through a virtio-serial port served by a small agent the
// kickstart installs (no guest network is needed for that); the serial console is logged.
// A reboot is a fresh qemu on the same disk (-no-reboot): much faster under TCG than a
// reboot inside the guest. The only network a guest may get is user-mode networking with
// restrict=on, whose sole exits are explicit forwards to servers on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface VmOptions {
  disk: string;
  /** Where the agent socket and the serial log live. */
  dir: string;
  /** Guest address 10.0.2.100:guest → 127.0.0.1:host on this machine, one per local server. */
  forwards?: { guest: number; host: number }[];
  memoryMiB?: number;
}

export interface VmResult {
  stdout: string;
  exitCode: number;
}

/** The guest's view of a forwarded local server. */
export const GUEST_HOST = '10.0.2.100';

export class Vm {
  readonly opts: VmOptions;
  #qemu: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);
  #sock: Socket | null = null;
  #buf = '';
  #waiters = new Map<string, (line: string) => void>();
  #seq = 0;
  boots = 0;

  constructor(opts: VmOptions) {
    this.opts = opts;
  }

  get serialLog(): string {
    return join(this.opts.dir, 'serial.log');
  }

  /** The qemu command line (printed by `npm run vm -- --keep`). */
  args(): string[] {
    const o = this.opts;
    const net = o.forwards?.length
      ? ['-netdev', `user,id=n0,restrict=on,${o.forwards.map((f) => `guestfwd=tcp:${GUEST_HOST}:${f.guest}-cmd:socat - TCP:127.0.0.1:${f.host}`).join(',')}`, '-device', 'virtio-net-pci,netdev=n0']
      : ['-nic', 'none'];
    return [
      '-accel', 'tcg', '-cpu', 'max', '-m', String(o.memoryMiB ?? 2048), '-smp', '2',
      '-display', 'none', '-vga', 'none', '-monitor', 'none', '-no-reboot',
      '-serial', `file:${this.serialLog}`,
      '-drive', `file=${o.disk},if=virtio,format=${o.disk.endsWith('.qcow2') ? 'qcow2' : 'raw'},cache=writeback`,
      '-device', 'virtio-serial',
      '-chardev', `socket,id=agent,path=${join(o.dir, 'agent.sock')},server=on,wait=off`,
      '-device', 'virtserialport,chardev=agent,name=atomhost.agent',
      ...net,
    ];
  }

  /** Starts qemu and waits until the guest agent answers (multi-user reached). */
  async start(timeoutMs = 300_000): Promise<void> {
    const r = await this.boot(timeoutMs);
    if (r !== 'up') throw new Error(`qemu exited (${r.code}) before the guest was up: ${r.stderr}\n${await this.serialTail()}`);
  }

  /**
   * Starts qemu; 'up' once the guest agent answers, or how qemu ended when the guest
   * stopped on its own first (a kernel panic with panic=N and -no-reboot, a power-off).
   */
  async boot(timeoutMs = 300_000): Promise<'up' | { code: number | null; stderr: string }> {
    if (this.#qemu) throw new Error('the VM is already running');
    const q = spawn('qemu-system-x86_64', this.args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    q.stderr!.on('data', (d) => (stderr += String(d)));
    this.#qemu = q;
    this.#exited = new Promise((r) => q.once('exit', (code) => r(code)));
    this.boots++;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (q.exitCode !== null || q.signalCode !== null) {
        this.#reset();
        return { code: q.exitCode, stderr: stderr.trim() };
      }
      if (!this.#sock && existsSync(join(this.opts.dir, 'agent.sock'))) await this.#connect().catch(() => {});
      if (this.#sock && (await this.#ping())) return 'up';
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`the guest did not come up in ${timeoutMs / 1000} s\n${await this.serialTail()}`);
  }

  /** Waits for qemu to end by itself (a guest that panics or powers off); null on timeout. */
  async waitExit(timeoutMs: number): Promise<number | null | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.#exited, new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), timeoutMs)))]);
    // A pending timer would keep the test process alive for minutes after the last boot.
    clearTimeout(timer);
    if (r !== 'timeout') this.#reset();
    return r;
  }

  async #connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = createConnection(join(this.opts.dir, 'agent.sock'));
      s.once('connect', () => {
        this.#sock = s;
        s.setEncoding('utf8');
        s.on('data', (d: string) => this.#onData(d));
        s.on('close', () => (this.#sock = null));
        resolve();
      });
      s.once('error', reject);
    });
  }

  #onData(d: string): void {
    this.#buf += d;
    let i;
    while ((i = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      const id = line.split(' ')[1];
      const w = id ? this.#waiters.get(id) : undefined;
      if (w) {
        this.#waiters.delete(id);
        w(line);
      }
    }
  }

  #request(kind: string, payload: string, timeoutMs: number): Promise<string | null> {
    const id = `r${++this.#seq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        resolve(null);
      }, timeoutMs);
      this.#waiters.set(id, (line) => {
        clearTimeout(timer);
        resolve(line);
      });
      this.#sock?.write(`${kind} ${id} ${payload}\n`);
    });
  }

  async #ping(): Promise<boolean> {
    return (await this.#request('PING', '-', 2000)) !== null;
  }

  /** Runs a shell script in the guest as root; its stdout and stderr together, and its exit code. */
  async run(script: string, timeoutMs = 180_000): Promise<VmResult> {
    if (!this.#sock) throw new Error('the VM is not running');
    const line = await this.#request('RUN', Buffer.from(script).toString('base64'), timeoutMs);
    if (line === null) throw new Error(`guest command timed out after ${timeoutMs / 1000} s: ${script}`);
    const [, , code, out] = line.split(' ');
    return { exitCode: Number(code), stdout: Buffer.from(out ?? '', 'base64').toString('utf8') };
  }

  /** Runs and throws with the output when the exit code is not 0. */
  async ok(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.run(script, timeoutMs);
    if (r.exitCode !== 0) throw new Error(`guest: ${script}: exit ${r.exitCode}\n${r.stdout}`);
    return r.stdout;
  }

  /** A clean power-off from inside (staged deployments are finalized on the way down). */
  async poweroff(timeoutMs = 240_000): Promise<void> {
    if (!this.#qemu) return;
    this.#sock?.write(`RUN x ${Buffer.from('systemctl poweroff').toString('base64')}\n`);
    const r = await this.waitExit(timeoutMs);
    if (r === 'timeout') {
      await this.kill();
      throw new Error(`the guest did not power off in ${timeoutMs / 1000} s\n${await this.serialTail()}`);
    }
  }

  /** A reboot: power off, then a fresh qemu on the same disk; the boot loader chooses the entry. */
  async reboot(timeoutMs?: number): Promise<void> {
    await this.poweroff();
    await this.start(timeoutMs);
  }

  /**
   * Power cut during a clean shutdown: asks the guest to power off, waits until the serial
   * console shows `pattern` (a unit being stopped, say), waits `delayMs`, and kills qemu.
   * Returns the console lines printed from the pattern to the cut, for the test's report.
   */
  async cutPowerDuringShutdown(pattern: RegExp, delayMs: number, timeoutMs = 240_000): Promise<string> {
    if (!this.#qemu) throw new Error('the VM is not running');
    const start = (await readFile(this.serialLog, 'utf8').catch(() => '')).length;
    this.#sock?.write(`RUN x ${Buffer.from('systemctl poweroff').toString('base64')}\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = (await readFile(this.serialLog, 'utf8').catch(() => '')).slice(start);
      const m = pattern.exec(text);
      if (m) {
        await new Promise((r) => setTimeout(r, delayMs));
        await this.kill();
        return (await readFile(this.serialLog, 'utf8')).slice(start + m.index);
      }
      if (!this.#qemu || this.#qemu.exitCode !== null || this.#qemu.signalCode !== null || Date.now() > deadline) throw new Error(`the console never showed ${pattern} during the shutdown\n${await this.serialTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Power cut: qemu killed, nothing flushed. */
  async kill(): Promise<void> {
    if (!this.#qemu) return;
    this.#qemu.kill('SIGKILL');
    await this.#exited;
    this.#reset();
  }

  #reset(): void {
    this.#sock?.destroy();
    this.#sock = null;
    this.#qemu = null;
    this.#waiters.clear();
    this.#buf = '';
  }

  async serialTail(lines = 40): Promise<string> {
    const text = await readFile(this.serialLog, 'utf8').catch(() => '');
    return `--- serial console (last ${lines} lines) ---\n${text.split('\n').slice(-lines).join('\n')}`;
  }
}

/**
 * The guest side of the command channel, installed by the VM kickstart's %post: reads
 * "RUN id base64" lines from the virtio-serial port, runs each as root, answers
 * "OUT id exit base64". It only listens on that port, which only the host side can reach.
 */
export const AGENT_SCRIPT = `#!/bin/bash
port=/dev/virtio-ports/atomhost.agent
while :; do
  # The port reads end-of-file while the host side is not connected: wait and open again.
  until [ -e "$port" ]; do sleep 1; done
  exec 3<>"$port"
  while IFS=' ' read -r kind id payload <&3; do
    case "$kind" in
      PING) printf 'PONG %s\\n' "$id" >&3 ;;
      RUN)
        out=$(bash -c "$(printf '%s' "$payload" | base64 -d)" 2>&1 </dev/null); rc=$?
        printf 'OUT %s %s %s\\n' "$id" "$rc" "$(printf '%s' "$out" | base64 -w0)" >&3 ;;
    esac
  done
  exec 3>&-
  sleep 1
done
`;

export const AGENT_UNIT = `[Unit]
Description=atomhost VM test agent (commands over virtio-serial)
After=multi-user.target

[Service]
ExecStart=/etc/atomhost-vm/agent.sh
Restart=always

[Install]
WantedBy=multi-user.target
`;
