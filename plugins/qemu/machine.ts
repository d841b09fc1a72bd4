/**
 * A running QEMU the agent is attached to: its pid and QMP connection. It
 * turns QMP events and the process's exit into notifications, and lets
 * lifecycle stages wait for an event (RESET after a reboot request) or for
 * the exit (after a power-off request).
 */
import { QmpClient, type QmpEvent } from './qmp-client.js';
import { isAlive, waitForExit } from './qemu-process.js';
import type { RunDir } from './run-dir.js';

export interface ShutdownInfo {
  /** True when the guest OS powered off (ACPI, halt); false when the host ended it. */
  guest: boolean;
  reason: string;
}

export interface MachineListener {
  onEvent(machine: Machine, event: QmpEvent): void;
  /** The process is gone; `shutdown` is QEMU's last SHUTDOWN event, if any. */
  onExit(machine: Machine, shutdown: ShutdownInfo | undefined): Promise<void> | void;
}

export class Machine {
  /**
   * Resolves after the process exited and onExit ran, or when the agent
   * detached (see detach()). Never rejects.
   */
  readonly exited: Promise<void>;
  private resolveExited!: () => void;
  private lastShutdown?: ShutdownInfo;
  /** Set before the agent's own `cont` of a QEMU started paused (-S): that RESUME is the start itself, no news. */
  startingUp = false;
  private detached = false;
  private readonly waiters = new Set<{ names: string[]; resolve: (e: QmpEvent) => void }>();

  private constructor(
    readonly guestId: string,
    readonly runDir: RunDir,
    readonly pid: number,
    readonly qmp: QmpClient,
    private readonly listener: MachineListener,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    qmp.on('event', (event) => this.handleEvent(event));
    qmp.once('close', () => void this.handleClose());
  }

  static async attach(guestId: string, runDir: RunDir, pid: number, listener: MachineListener): Promise<Machine> {
    const qmp = await QmpClient.connect(runDir.qmpSocket);
    return new Machine(guestId, runDir, pid, qmp, listener);
  }

  /** QEMU's run state: running, paused, shutdown, ... (query-status). */
  async status(): Promise<string> {
    const status = await this.qmp.execute<{ status: string; running: boolean }>('query-status');
    return status.status;
  }

  /**
   * Resolves with the first of the named events after this call, or rejects
   * after timeoutMs, on abort, or when QEMU exits first.
   */
  waitForEvent(names: string[], timeoutMs: number, signal?: AbortSignal): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const waiter = {
        names,
        resolve: (event: QmpEvent) => {
          cleanup();
          resolve(event);
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new WaitTimeout(names, timeoutMs));
      }, timeoutMs);
      const onAbort = () => {
        cleanup();
        reject(new Error(`stopped waiting for ${names.join('/')}: the stage was aborted (timeout or agent stopping)`));
      };
      const onExit = () => {
        cleanup();
        reject(new Error(this.detached ? `the agent let go of QEMU (it is stopping) before ${names.join('/')}` : `QEMU exited before ${names.join('/')}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.qmp.removeListener('close', onExit);
        this.waiters.delete(waiter);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.qmp.once('close', onExit);
      this.waiters.add(waiter);
    });
  }

  /**
   * Waits until the process is gone. Resolves false on timeout; rejects on abort.
   */
  async waitForExit(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        this.exited.then(() => {
          if (this.detached) throw new Error('the agent let go of QEMU (it is stopping) before QEMU exited; the guest may still run');
          return true;
        }),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
        new Promise<boolean>((_, reject) => {
          onAbort = () => reject(new Error('stopped waiting for QEMU to exit: the stage was aborted (timeout or agent stopping)'));
          if (signal?.aborted) onAbort();
          else signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Drops the QMP connection without touching QEMU (agent shutdown). */
  detach(): void {
    this.detached = true;
    this.qmp.close();
  }

  private handleEvent(event: QmpEvent): void {
    if (event.event === 'SHUTDOWN') {
      this.lastShutdown = { guest: event.data?.guest === true, reason: String(event.data?.reason ?? 'unknown') };
    }
    for (const waiter of this.waiters) if (waiter.names.includes(event.event)) waiter.resolve(event);
    this.listener.onEvent(this, event);
  }

  private async handleClose(): Promise<void> {
    if (this.detached) return this.resolveExited();
    // QMP closes as QEMU exits; the pid may linger for a moment.
    if (!(await waitForExit(this.pid, 10000)) && (await isAlive(this.pid))) {
      // QEMU alive without its monitor should not happen; report it as gone
      // from our control rather than pretend it still runs under us.
      this.lastShutdown ??= { guest: false, reason: 'qmp-connection-lost' };
    }
    try {
      await this.listener.onExit(this, this.lastShutdown);
    } finally {
      this.resolveExited();
    }
  }
}

export class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout';
  constructor(
    readonly events: string[],
    readonly timeoutMs: number,
  ) {
    super(`no ${events.join('/')} event within ${timeoutMs / 1000} s`);
  }
}
