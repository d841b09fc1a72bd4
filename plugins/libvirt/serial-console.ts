/**
 * The libvirt domains' serial consoles (the console stage). The domain XML
 * puts ttyS0 on a unix socket QEMU listens on (console.sock) with a `<log>`
 * (console.log, append on), which libvirt's virtlogd (or QEMU) writes
 * whether or not anyone is connected, across reboots, power cycles and
 * agent restarts, rotating it by size (virtlogd's max_size, 2 MiB by
 * default, into console.log.0, .1, .2).
 *
 * What viewers see is that log, followed as it grows: every byte from the
 * first of a boot, however fast the guest is and whether the agent had
 * connected yet (a race the socket alone would lose). What they type goes
 * into the socket, which the agent holds while a viewer is attached and the
 * domain runs; what QEMU sends on it is the same output, already in the log,
 * and is read and dropped.
 */
import net from 'node:net';
import path from 'node:path';
import { ConsoleSwitchboard, LogFollower, checkUnixSocketPath, readLogTail, type ConsoleRequest, type Guest, type GuestConsole, type Logger } from '../../core/contract/index.js';
import type { DomainEvent } from './domain-events.js';

/** Rotated parts virtlogd keeps (its max_backups, 3 by default), newest first. */
const ROTATED = ['.0', '.1', '.2'];
/** Keystrokes typed while the socket connects, at most; beyond that the guest could not take them anyway. */
const PENDING_INPUT_BYTES = 64 * 1024;

/** The files of a guest's serial console, in its folder of the plugin's data dir. */
export function consoleFiles(dataDir: string, guestId: string): { socket: string; log: string } {
  const dir = path.join(dataDir, guestId);
  const socket = path.join(dir, 'console.sock');
  checkUnixSocketPath(socket, 'console socket');
  return { socket, log: path.join(dir, 'console.log') };
}

/** The last `bytes` bytes of the log and its rotated parts, oldest first. */
export async function readConsoleLog(log: string, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let wanted = bytes;
  for (const file of [log, ...ROTATED.map((suffix) => log + suffix)]) {
    if (wanted <= 0) break;
    // A missing part reads as empty (virtlogd has not rotated that far yet).
    const tail = await readLogTail(file, wanted);
    parts.unshift(tail);
    wanted -= tail.length;
  }
  return Buffer.concat(parts);
}


export class LibvirtConsoles {
  private readonly switchboard = new ConsoleSwitchboard();
  /** Per guest with a viewer's console open: its log follower and its input socket. */
  private readonly live = new Map<string, { follower?: LogFollower; input?: net.Socket; connecting: boolean }>();

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
    /** The guest a domain (by name) is, if any of ours. */
    private readonly guestOf: (domain: string) => Promise<Guest | undefined>,
  ) {}

  /** The console stage. */
  async open({ guest, purpose }: ConsoleRequest): Promise<GuestConsole> {
    const files = consoleFiles(this.dataDir, guest.id);
    const console = this.switchboard.open(guest.id, purpose, (bytes) => readConsoleLog(files.log, bytes));
    if (purpose === 'view' && !this.live.has(guest.id)) {
      const entry: { follower?: LogFollower; input?: net.Socket; connecting: boolean } = { connecting: false };
      this.live.set(guest.id, entry);
      entry.follower = await LogFollower.start(
        files.log,
        (bytes) => this.switchboard.output(guest.id, bytes),
        (error) => this.log.warn({ guest: guest.id, error: error.message }, 'reading the console log failed'),
      );
      this.connectInput(guest.id);
    }
    return {
      get output() {
        return console.output;
      },
      write: (bytes) => {
        // Typed while the domain was off, or before the socket: try (again) to reach it.
        this.connectInput(guest.id);
        console.write(bytes);
      },
      readLog: (bytes) => console.readLog(bytes),
      onReset: (listener) => console.onReset?.(listener),
      close: () => {
        console.close();
        if (!this.switchboard.isOpen(guest.id)) this.release(guest.id);
      },
    };
  }

  /** A domain's event: a start (or the guest's reboot) is a new boot, and a start a new socket to type into. */
  domainEvent({ kind, domain, detail }: DomainEvent): void {
    const started = kind === 'lifecycle' && /^Started/.test(detail);
    if (this.live.size === 0 || (!started && kind !== 'reboot')) return;
    void this.guestOf(domain).then((guest) => {
      if (!guest || !this.live.has(guest.id)) return;
      this.switchboard.reset(guest.id, started ? `libvirt: ${detail}` : 'the guest rebooted');
      if (started) this.connectInput(guest.id);
    }, () => undefined);
  }

  /** The guest was deleted, or the plugin stops: its consoles end. */
  closeAll(guestId?: string): void {
    this.switchboard.closeAll(guestId);
    for (const id of guestId === undefined ? [...this.live.keys()] : [guestId]) this.release(id);
  }

  /**
   * Connects to the domain's console socket unless connected or connecting.
   * Bytes typed meanwhile wait (bounded) and go first once it is connected;
   * when there is no socket (the domain is off) they are dropped.
   */
  private connectInput(guestId: string): void {
    const entry = this.live.get(guestId);
    if (!entry || entry.input || entry.connecting) return;
    entry.connecting = true;
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    this.switchboard.connectInput(guestId, (bytes) => {
      if (pendingBytes + bytes.length > PENDING_INPUT_BYTES) return;
      pending.push(bytes);
      pendingBytes += bytes.length;
    });
    const socket = net.connect({ path: consoleFiles(this.dataDir, guestId).socket });
    socket.once('connect', () => {
      entry.connecting = false;
      if (this.live.get(guestId) !== entry) {
        socket.destroy();
        return;
      }
      entry.input = socket;
      for (const bytes of pending) socket.write(bytes);
      this.switchboard.connectInput(guestId, (bytes) => socket.write(bytes));
    });
    // The same output as the log's: read so QEMU never waits on us, and dropped.
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      entry.connecting = false;
      if (entry.input === socket) entry.input = undefined;
      if (this.live.get(guestId) === entry) this.switchboard.connectInput(guestId, undefined);
    });
  }

  private release(guestId: string): void {
    const entry = this.live.get(guestId);
    if (!entry) return;
    this.live.delete(guestId);
    entry.follower?.stop();
    entry.input?.destroy();
  }
}
