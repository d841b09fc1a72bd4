/**
 * A container's console (its /dev/console) through the console stage kind
 * (docs/console.md, "LXC containers").
 *
 * LXC gives every container a pty as its console, held by the container's
 * monitor process (not the agent), and writes everything the container
 * prints there to `lxc.console.logfile` itself (O_APPEND), appended across
 * the container's restarts, whether anyone is attached, and while the agent
 * is down.
 *
 * - Output: viewers are fed from that log as it grows (followed with
 *   inotify), so a viewer attached while the container is stopped sees its
 *   next boot from the first byte, as the log has it.
 * - Input: an `lxc-console` child (container-console-input.ts) while a
 *   viewer is attached and the container runs, made again when a viewer
 *   types after the container (re)started.
 * - Rotation: by the agent, copy and truncate, when the log passes
 *   `logBytes` (its last `logBytes` become FILE.1): checked every quarter of
 *   that of output a viewer sees, and by a sweep of every container. Not
 *   LXC's own (`lxc.console.size` + `lxc.console.rotate`): LXC 5.0 writes
 *   the start of the chunk that crossed the size into the new file again
 *   (up to 1 KiB seen twice at every rotation, measured here).
 * - The log route reads FILE.1 then FILE.
 */
import { ConsoleSwitchboard, LogFollower, readLogTail, rotateLog, type ConsoleRequest, type GuestConsole, type Logger } from '../../core/contract/index.js';
import path from 'node:path';
import { LxcConsoleInput, type ConsoleInputTarget } from './container-console-input.js';
import type { ContainerPaths } from './container-paths.js';

/** After an attach that failed (the container is stopped), typing does not try again for this long, unless it started. */
const RETRY_MS = 500;
/** How often every container's log size is looked at (output nobody watches is not seen as it comes). */
export const SWEEP_MS = 30_000;

/** Where one container's console is. */
export interface ConsolePlace extends ConsoleInputTarget {
  /** Its lxc.console.logfile (inside the container's folder). */
  logFile: string;
}

/** The console of the container at `paths`: its log in the container's folder (gone with it). */
export function consolePlace(paths: ContainerPaths): ConsolePlace {
  return { name: paths.name, lxcPath: paths.lxcPath, logFile: path.join(paths.dir, 'console.log') };
}

/**
 * The container config lines of its console: LXC logs it, unbounded (the
 * agent rotates it). No `lxc.console.size` at all: LXC reads even an
 * explicit 0 as "less than a page" and bounds the file at 4 KiB.
 */
export function consoleConfigLines(place: ConsolePlace): string[] {
  return [`lxc.console.logfile = ${place.logFile}`];
}

interface Live {
  follower?: LogFollower;
  input?: LxcConsoleInput;
  /** When an attach last ended without the container having started since. */
  failedAt?: number;
  /** Output bytes seen since the log's size was last checked. */
  unchecked: number;
}

export class ContainerConsoles {
  private readonly switchboard = new ConsoleSwitchboard();
  private readonly live = new Map<string, Live>();
  /** Per container, its rotation in progress. */
  private readonly rotating = new Map<string, Promise<void>>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly lxcConsole: string,
    private readonly placeOf: (guestId: string) => ConsolePlace,
    /** The log is rotated past this size; FILE.1 keeps its last this many bytes. */
    private readonly logBytes: number,
    private readonly log: Logger,
  ) {}

  /** The console stage. */
  async open({ guest, purpose }: ConsoleRequest): Promise<GuestConsole> {
    const place = this.placeOf(guest.id);
    const console = this.switchboard.open(guest.id, purpose, (bytes) => readLogTail(place.logFile, bytes));
    if (purpose === 'view' && !this.live.has(guest.id)) {
      const entry: Live = { unchecked: 0 };
      this.live.set(guest.id, entry);
      try {
        entry.follower = await LogFollower.start(
          place.logFile,
          (bytes) => {
            this.switchboard.output(guest.id, bytes);
            entry.unchecked += bytes.length;
            if (entry.unchecked >= this.logBytes / 4) void this.rotate(guest.id);
          },
          (error) => this.log.warn({ guest: guest.id, error: error.message }, 'reading the console log failed'),
        );
      } catch (error) {
        console.close();
        this.release(guest.id);
        throw error;
      }
      this.switchboard.connectInput(guest.id, (bytes) => this.type(guest.id, bytes));
      this.attach(guest.id);
    }
    return {
      get output() {
        return console.output;
      },
      write: (bytes) => console.write(bytes),
      readLog: (bytes) => console.readLog(bytes),
      onReset: (listener) => console.onReset?.(listener),
      close: () => {
        console.close();
        if (!this.switchboard.isOpen(guest.id)) this.release(guest.id);
      },
    };
  }

  /** The container (re)started: a new boot for viewers, and a console to type into again. */
  started(guestId: string, reason: string): void {
    const entry = this.live.get(guestId);
    if (!entry) return;
    this.switchboard.reset(guestId, reason);
    entry.failedAt = undefined;
    entry.input?.close();
    entry.input = undefined;
    this.attach(guestId);
  }

  /**
   * Rotates the log of each container that passed the bound (the plugin's
   * periodic sweep: output nobody watches is not seen as it comes).
   */
  async sweep(guestIds: Iterable<string>): Promise<void> {
    for (const guestId of guestIds) {
      // One that is running may have looked at the size before the latest output: look again after it.
      await this.rotating.get(guestId);
      await this.rotate(guestId);
    }
  }

  /** One rotation per container at a time: through its follower while viewed, so viewers miss nothing. */
  private rotate(guestId: string): Promise<void> {
    const running = this.rotating.get(guestId);
    if (running) return running;
    const entry = this.live.get(guestId);
    if (entry) entry.unchecked = 0;
    const rotation = (async () => {
      try {
        if (entry?.follower) await entry.follower.rotate(this.logBytes);
        else await rotateLog(this.placeOf(guestId).logFile, this.logBytes);
      } catch (error) {
        this.log.warn({ guest: guestId, err: (error as Error).message }, 'console log rotation failed');
      } finally {
        this.rotating.delete(guestId);
      }
    })();
    this.rotating.set(guestId, rotation);
    return rotation;
  }

  /** Sweeps the logs of `guestIds()` every `everyMs` until stop(). */
  sweepEvery(everyMs: number, guestIds: () => Promise<string[]>): void {
    let sweeping = false;
    this.sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      guestIds()
        .then((ids) => this.sweep(ids))
        .catch((error: Error) => this.log.warn({ err: error.message }, 'console log sweep failed'))
        .finally(() => (sweeping = false));
    }, everyMs);
    this.sweeper.unref();
  }

  /** The plugin stops: no more sweeps, every console ends (the containers' logs go on under LXC). */
  stop(): void {
    clearInterval(this.sweeper);
    this.closeAll();
  }

  /** The container was deleted, or the plugin stops: its consoles end. */
  closeAll(guestId?: string): void {
    this.switchboard.closeAll(guestId);
    for (const id of guestId === undefined ? [...this.live.keys()] : [guestId]) this.release(id);
  }

  /** Bytes a viewer typed: into the attached lxc-console, attaching first when there is none. */
  private type(guestId: string, bytes: Buffer): void {
    const entry = this.live.get(guestId);
    if (!entry) return;
    if (!entry.input?.running) {
      // Stopped a moment ago: typing drops (there is no console to take it) without a process per keystroke.
      if (entry.failedAt !== undefined && Date.now() - entry.failedAt < RETRY_MS) return;
      this.attach(guestId);
    }
    entry.input?.write(bytes);
  }

  /** An lxc-console on the container's console; it ends by itself when the container is not running. */
  private attach(guestId: string): void {
    const entry = this.live.get(guestId);
    if (!entry || entry.input?.running) return;
    const input = new LxcConsoleInput(this.lxcConsole, this.placeOf(guestId));
    entry.input = input;
    void input.ended.then((why) => {
      if (entry.input !== input) return;
      entry.input = undefined;
      entry.failedAt = Date.now();
      if (this.live.get(guestId) === entry) this.log.debug({ guest: guestId, why }, 'console input detached');
    });
  }

  private release(guestId: string): void {
    const entry = this.live.get(guestId);
    if (!entry) return;
    this.live.delete(guestId);
    entry.follower?.stop();
    entry.input?.close();
    this.switchboard.connectInput(guestId, undefined);
  }
}
