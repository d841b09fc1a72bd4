/**
 * The guests' serial consoles (ttyS0). QEMU serves each on a unix socket
 * chardev in the run dir (console.sock) and writes everything the guest
 * prints to console.log itself (the chardev's logfile, appended), so the
 * output is kept while nobody watches and while the agent is down. The agent
 * holds one connection per running QEMU, made before the guest's vCPUs run
 * (QEMU starts paused: -S, then `cont`) and again after an agent restart,
 * and feeds the consoles the kernel opened from it. It rotates console.log
 * by size by copy and truncate, as QEMU keeps the file open (O_APPEND).
 * See docs/console.md.
 */
import net from 'node:net';
import { ConsoleSwitchboard, readLogTail, rotateLog, type ConsolePurpose, type GuestConsole, type Logger } from '../../core/contract/index.js';
import { RunDir } from './run-dir.js';

/** How long connecting to a fresh QEMU's console socket may take. */
const CONNECT_TIMEOUT_MS = 5000;


export class QemuConsoles {
  private readonly board = new ConsoleSwitchboard();
  private readonly sockets = new Map<string, net.Socket>();
  /** Output bytes seen since console.log's size was last checked, per guest. */
  private readonly unchecked = new Map<string, number>();
  private readonly rotating = new Set<string>();

  constructor(
    private readonly dataDir: string,
    /** console.log is rotated past this size; console.log.1 keeps the last this many bytes before. */
    private readonly logBytes: number,
    private readonly log: Logger,
  ) {}

  /** The console stage: the guest's console for the kernel, its log read from console.log(.1). */
  open(guestId: string, purpose: ConsolePurpose): GuestConsole {
    const runDir = new RunDir(this.dataDir, guestId);
    return this.board.open(guestId, purpose, (bytes) => readLogTail(runDir.consoleLog, bytes));
  }

  /**
   * Connects to the console socket of the guest's running QEMU. False when
   * it has none (a QEMU started before consoles existed): its output still
   * goes to console.log, nothing can be typed.
   */
  async connect(guestId: string): Promise<boolean> {
    this.disconnect(guestId);
    const runDir = new RunDir(this.dataDir, guestId);
    let socket: net.Socket;
    try {
      socket = await connectUnix(runDir.consoleSocket);
    } catch (error) {
      this.log.warn({ guest: guestId, err: (error as NodeJS.ErrnoException).code ?? (error as Error).message }, 'no console socket on this QEMU (started before consoles existed?): restart the guest for a console');
      return false;
    }
    socket.on('data', (chunk: Buffer) => {
      this.board.output(guestId, chunk);
      this.account(guestId, chunk.length);
    });
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      if (this.sockets.get(guestId) !== socket) return;
      this.sockets.delete(guestId);
      this.board.connectInput(guestId, undefined);
    });
    this.sockets.set(guestId, socket);
    this.board.connectInput(guestId, (bytes) => socket.write(bytes));
    void this.rotate(guestId);
    return true;
  }

  /** The guest (re)booted: its start, or QEMU's RESET. */
  reset(guestId: string, reason: string): void {
    this.board.reset(guestId, reason);
  }

  disconnect(guestId: string): void {
    const socket = this.sockets.get(guestId);
    this.sockets.delete(guestId);
    this.board.connectInput(guestId, undefined);
    socket?.destroy();
  }

  /** The guest is deleted: its consoles end. */
  forget(guestId: string): void {
    this.disconnect(guestId);
    this.board.closeAll(guestId);
    this.unchecked.delete(guestId);
  }

  /** The agent stops: connections dropped (QEMU goes on logging), consoles ended. */
  stop(): void {
    for (const guestId of [...this.sockets.keys()]) this.disconnect(guestId);
    this.board.closeAll();
  }

  /** Checks console.log's size every quarter of the bound of output, one check per guest at a time. */
  private account(guestId: string, bytes: number): void {
    const seen = (this.unchecked.get(guestId) ?? 0) + bytes;
    this.unchecked.set(guestId, seen);
    if (seen >= this.logBytes / 4) void this.rotate(guestId);
  }

  private async rotate(guestId: string): Promise<void> {
    if (this.rotating.has(guestId)) return;
    this.rotating.add(guestId);
    this.unchecked.set(guestId, 0);
    try {
      await rotateLog(new RunDir(this.dataDir, guestId).consoleLog, this.logBytes);
    } catch (error) {
      this.log.warn({ guest: guestId, err: (error as Error).message }, 'console log rotation failed');
    } finally {
      this.rotating.delete(guestId);
    }
  }
}

function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on the console socket within ${CONNECT_TIMEOUT_MS / 1000} s`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}
