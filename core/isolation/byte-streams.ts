/**
 * Byte streams over the RPC channel, for stages that answer a stream (a
 * snapshot download): the child answers the `stage` call with a stream id,
 * then sends the bytes as `stream.data` notifications, only as many as the
 * kernel has granted with `stream.pull`. The kernel grants more as its
 * consumer (the HTTP client) reads, so a slow client slows the child and
 * neither side buffers more than one window, whatever the stream's length.
 * docs/isolation-protocol.md "Streams" is the wire contract.
 */
import { Readable } from 'node:stream';
import { toWireError, describe } from './rpc-peer.js';
import { StreamNotifications, STREAM_CHUNK_BYTES, STREAM_WINDOW_BYTES, type StreamAnswer } from './protocol.js';

type Notify = (method: string, params: unknown[]) => void;

/** A stream the kernel receives: a Readable that grants credit as it is read. */
class IncomingStream extends Readable {
  private granted = 0;
  private received = 0;
  private ended = false;

  constructor(
    private readonly id: number,
    private readonly notify: Notify,
    private readonly onDone: (id: number) => void,
  ) {
    super({ highWaterMark: STREAM_CHUNK_BYTES });
  }

  override _read(): void {
    // Top the credit up to one window when half of it has arrived.
    const outstanding = this.granted - this.received;
    if (outstanding > STREAM_WINDOW_BYTES / 2) return;
    const more = STREAM_WINDOW_BYTES - outstanding;
    this.granted += more;
    this.notify(StreamNotifications.pull, [this.id, more]);
  }

  data(chunk: unknown): void {
    if (!Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      this.destroy(new Error(`stream ${this.id} carried ${describe(chunk)} where binary data belongs`));
      return;
    }
    this.received += chunk.length;
    if (this.received > this.granted) {
      this.destroy(new Error(`stream ${this.id} sent ${this.received} bytes where ${this.granted} were granted`));
      return;
    }
    this.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  }

  finish(): void {
    this.ended = true;
    this.onDone(this.id);
    this.push(null);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.onDone(this.id);
    // The consumer went away (or this side failed it): the child stops sending.
    if (!this.ended) this.notify(StreamNotifications.cancel, [this.id]);
    this.ended = true;
    callback(error);
  }
}

/** The kernel's end: streams the child announced in stage answers, fed by its notifications. */
export class IncomingStreams {
  private readonly open = new Map<number, IncomingStream>();

  constructor(
    private readonly notify: Notify,
    private readonly label: string,
  ) {}

  /** The notifications this side handles, for the RpcPeer. */
  get handlers(): Record<string, (params: unknown[]) => void> {
    return {
      [StreamNotifications.data]: ([id, chunk]) => this.open.get(Number(id))?.data(chunk),
      [StreamNotifications.end]: ([id]) => this.open.get(Number(id))?.finish(),
      [StreamNotifications.error]: ([id, error]) => {
        const message = typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string' ? (error as { message: string }).message : describe(error);
        this.open.get(Number(id))?.destroy(new Error(`${this.label} failed the stream: ${message}`));
      },
    };
  }

  /** The Readable for a stage's answer `{stream, size?}`; undefined when the answer is not one. */
  accept(answer: unknown): { stream: Readable; size?: number } | undefined {
    if (typeof answer !== 'object' || answer === null) return undefined;
    const { stream: id, size } = answer as Partial<StreamAnswer>;
    if (!Number.isInteger(id) || (id as number) < 0 || this.open.has(id as number)) return undefined;
    if (size !== undefined && size !== null && !(Number.isSafeInteger(size) && (size as number) >= 0)) return undefined;
    const stream = new IncomingStream(id as number, this.notify, (done) => this.open.delete(done));
    this.open.set(id as number, stream);
    return typeof size === 'number' ? { stream, size } : { stream };
  }

  /** The channel is gone: every open stream fails with why. */
  failAll(reason: Error): void {
    for (const stream of [...this.open.values()]) stream.destroy(reason);
    this.open.clear();
  }

  get size(): number {
    return this.open.size;
  }
}

interface OutgoingState {
  source: Readable;
  credit: number;
  cancelled: boolean;
  wake?: () => void;
}

/** The child's end: sends a plugin's Readable as notifications, within the credit granted. */
export class OutgoingStreams {
  private nextId = 0;
  private readonly streams = new Map<number, OutgoingState>();

  constructor(private readonly notify: Notify) {}

  get handlers(): Record<string, (params: unknown[]) => void> {
    return {
      [StreamNotifications.pull]: ([id, bytes]) => {
        const state = this.streams.get(Number(id));
        if (!state || !Number.isSafeInteger(bytes) || (bytes as number) <= 0) return;
        state.credit += bytes as number;
        state.wake?.();
      },
      [StreamNotifications.cancel]: ([id]) => {
        const state = this.streams.get(Number(id));
        if (!state) return;
        state.cancelled = true;
        state.source.destroy();
        state.wake?.();
      },
    };
  }

  /** Starts sending `source`; answer the stage with `{stream: id, size}`. Nothing is sent before the first pull. */
  send(source: Readable, size?: number): StreamAnswer {
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    const id = this.nextId;
    const state: OutgoingState = { source, credit: 0, cancelled: false };
    this.streams.set(id, state);
    void this.pump(id, state);
    return size === undefined ? { stream: id } : { stream: id, size };
  }

  /** Stop every stream (the plugin is stopping). */
  destroyAll(): void {
    for (const state of this.streams.values()) {
      state.cancelled = true;
      state.source.destroy();
      state.wake?.();
    }
  }

  private async pump(id: number, state: OutgoingState): Promise<void> {
    try {
      for await (const piece of state.source) {
        const chunk: Buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array | string);
        let offset = 0;
        while (offset < chunk.length) {
          while (state.credit <= 0 && !state.cancelled) await new Promise<void>((resolve) => (state.wake = resolve));
          if (state.cancelled) return;
          const length = Math.min(state.credit, chunk.length - offset, STREAM_CHUNK_BYTES);
          this.notify(StreamNotifications.data, [id, chunk.subarray(offset, offset + length)]);
          state.credit -= length;
          offset += length;
        }
      }
      if (!state.cancelled) this.notify(StreamNotifications.end, [id]);
    } catch (error) {
      if (!state.cancelled) this.notify(StreamNotifications.error, [id, toWireError(error)]);
    } finally {
      this.streams.delete(id);
      state.wake = undefined;
    }
  }
}
