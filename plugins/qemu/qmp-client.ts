/**
 * A small client for QEMU's machine protocol (QMP) over its unix socket.
 *
 * QMP is newline-delimited JSON: a greeting, then `qmp_capabilities`, then
 * commands answered in order, interleaved with asynchronous events. Commands
 * carry an `id` so replies can be matched even if we ever pipeline them.
 * No library: the protocol is small and a dependency would not remove much.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { checkUnixSocketPath } from '../../core/contract/index.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** An error QEMU returned for a command (`{"error": {"class", "desc"}}`). */
export class QmpCommandError extends Error {
  override readonly name = 'QmpCommandError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly description: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${description}`);
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpClientEvents {
  event: [QmpEvent];
  close: [];
}

export class QmpClient extends EventEmitter<QmpClientEvents> {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffered = '';
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
    readonly greeting: unknown,
    private readonly commandTimeoutMs: number,
  ) {
    super();
  }

  /**
   * Connects, reads the greeting and leaves capabilities negotiation mode.
   * Rejects with a message that names the socket if any step fails.
   */
  static async connect(socketPath: string, options: { timeoutMs?: number; commandTimeoutMs?: number } = {}): Promise<QmpClient> {
    checkUnixSocketPath(socketPath, 'QMP socket');
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = net.connect({ path: socketPath });
    const greeting = await new Promise<unknown>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => fail(new Error(`no QMP greeting on ${socketPath} within ${timeoutMs} ms (QEMU serves one QMP client at a time: is another agent attached?)`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.destroy();
        reject(error);
      };
      const onData = (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const nl = text.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.pause();
        const rest = text.slice(nl + 1);
        try {
          const parsed = JSON.parse(text.slice(0, nl));
          if (!parsed.QMP) throw new Error('not a QMP greeting');
          if (rest) socket.unshift(Buffer.from(rest, 'utf8'));
          resolve(parsed);
        } catch (error) {
          fail(new Error(`unexpected QMP greeting on ${socketPath}: ${(error as Error).message}`));
        }
      };
      const onError = (error: Error) => fail(new Error(`cannot connect to QMP socket ${socketPath}: ${error.message}`));
      socket.on('data', onData);
      socket.once('error', onError);
      socket.once('close', () => fail(new Error(`QMP socket ${socketPath} closed before the greeting`)));
    });
    socket.removeAllListeners('close');
    const client = new QmpClient(socket, socketPath, greeting, options.commandTimeoutMs ?? 10000);
    client.attach();
    try {
      await client.execute('qmp_capabilities');
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs a command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP connection ${this.socketPath} is closed; cannot run ${command}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const message = args ? { execute: command, arguments: args, id } : { execute: command, id };
      this.socket.write(JSON.stringify(message) + '\n');
    });
  }

  /** Closes the connection; QEMU keeps running and accepts a new client. */
  close(): void {
    this.socket.destroy();
  }

  private attach(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl).trim();
        this.buffered = this.buffered.slice(nl + 1);
        if (line) this.handleLine(line);
      }
    });
    // Errors (e.g. ECONNRESET when QEMU exits) always end in 'close'.
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      for (const [id, pending] of this.pending) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`QMP connection closed before ${pending.command} answered (did QEMU exit?)`));
        this.pending.delete(id);
      }
      this.emit('close');
    });
    this.socket.resume();
  }

  private handleLine(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      return; // QEMU only sends JSON; a broken line is not actionable.
    }
    if (typeof message.event === 'string') {
      this.emit('event', message as unknown as QmpEvent);
      return;
    }
    const id = message.id as number | undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id!);
    clearTimeout(pending.timer);
    if (message.error) {
      const error = message.error as { class?: string; desc?: string };
      pending.reject(new QmpCommandError(pending.command, error.class ?? 'Error', error.desc ?? 'unknown error'));
    } else {
      pending.resolve(message.return);
    }
  }
}
