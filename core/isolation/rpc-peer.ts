/**
 * One end of a MessagePack-RPC conversation over a pair of byte streams
 * (a child's stdin/stdout). Both ends can call and answer. The peer keeps
 * the bookkeeping honest: every answer matches a question it asked (or one
 * it gave up on), and anything that is not a well-formed message means the
 * stream can no longer be trusted, so the peer closes and says why.
 */
import type { Readable, Writable } from 'node:stream';
import { createMessageDecoder, createMessageEncoder } from './msgpack-framing.js';
import type { WireError } from './protocol.js';
import { failureMessage } from '../errors.js';

const REQUEST = 0;
const RESPONSE = 1;
const NOTIFICATION = 2;
/** msgids are uint32 in MessagePack-RPC. */
const MAX_MSGID = 0xffff_ffff;
/** Answers still accepted for calls given up on; older ones count as unknown. */
const ABANDONED_MEMORY = 4096;

/** An error the other side answered with. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The channel closed (the other side went away, or this side closed it). */
export class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
}

/** The other side sent something that is not MessagePack-RPC. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export type RequestHandler = (params: unknown[], msgid: number) => unknown;
export type NotificationHandler = (params: unknown[]) => void;

export interface RpcPeerOptions {
  input: Readable;
  output: Writable;
  /** Methods the other side may call. */
  methods: Record<string, RequestHandler>;
  notifications?: Record<string, NotificationHandler>;
  /** Called once when the channel closes, with the reason. */
  onClose?: (reason: Error) => void;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Give up after this long (ms). */
  timeoutMs?: number;
  /** Told the msgid of a call given up on (so the other side can be told too). */
  onAbandon?: (msgid: number) => void;
}

interface Pending {
  method: string;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
}

export class RpcPeer {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly abandoned = new Set<number>();
  private readonly encoder = createMessageEncoder();
  private closedReason: Error | undefined;

  constructor(private readonly options: RpcPeerOptions) {
    this.encoder.pipe(options.output);
    this.encoder.on('error', (error) => this.close(new ChannelClosedError(`cannot encode a message: ${error.message}`)));
    options.output.on('error', (error: NodeJS.ErrnoException) => this.close(new ChannelClosedError(`the channel broke while writing (${error.code ?? error.message})`)));
    const decoder = createMessageDecoder();
    options.input.pipe(decoder);
    decoder.on('data', (message: unknown) => this.receive(message));
    decoder.on('error', (error: Error) => this.close(new ProtocolError(`received bytes that are not MessagePack: ${error.message}`)));
    options.input.on('error', (error: NodeJS.ErrnoException) => this.close(new ChannelClosedError(`the channel broke while reading (${error.code ?? error.message})`)));
    options.input.on('end', () => this.close(new ChannelClosedError('the other side closed the channel')));
  }

  get closed(): Error | undefined {
    return this.closedReason;
  }

  /** Calls in flight (asked, not yet answered or given up on). */
  get inFlight(): number {
    return this.pending.size;
  }

  call<T = unknown>(method: string, params: unknown[], options: CallOptions = {}): Promise<T> {
    if (this.closedReason) return Promise.reject(this.closedReason);
    const { signal, timeoutMs, onAbandon } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.nextId = this.nextId >= MAX_MSGID ? 1 : this.nextId + 1;
    const msgid = this.nextId;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const giveUp = (reason: unknown) => {
        if (!this.pending.delete(msgid)) return;
        cleanup();
        this.rememberAbandoned(msgid);
        onAbandon?.(msgid);
        reject(reason);
      };
      const onAbort = () => giveUp(signal!.reason);
      this.pending.set(msgid, {
        method,
        resolve: (value) => {
          cleanup();
          resolve(value as T);
        },
        reject: (reason) => {
          cleanup();
          reject(reason);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) timer = setTimeout(() => giveUp(new Error(`no answer to "${method}" within ${timeoutMs} ms`)), timeoutMs);
      this.send([REQUEST, msgid, method, params]);
    });
  }

  notify(method: string, params: unknown[]): void {
    if (!this.closedReason) this.send([NOTIFICATION, method, params]);
  }

  /** Stop writing: the other side sees end of input. */
  end(): void {
    this.encoder.end();
  }

  /** Close the channel: pending calls fail with `reason`. */
  close(reason: Error): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
    this.options.onClose?.(reason);
  }

  private send(message: unknown[]): void {
    this.encoder.write(message);
  }

  private rememberAbandoned(msgid: number): void {
    this.abandoned.add(msgid);
    if (this.abandoned.size > ABANDONED_MEMORY) this.abandoned.delete(this.abandoned.values().next().value!);
  }

  private receive(message: unknown): void {
    if (this.closedReason) return;
    if (!Array.isArray(message)) return this.close(new ProtocolError(`received ${describe(message)} where a MessagePack-RPC array belongs`));
    const [type] = message;
    if (type === REQUEST && message.length === 4 && isMsgId(message[1]) && typeof message[2] === 'string' && Array.isArray(message[3])) {
      void this.answer(message[1], message[2], message[3]);
    } else if (type === RESPONSE && message.length === 4 && isMsgId(message[1])) {
      const [, msgid, error, result] = message as [number, number, unknown, unknown];
      const pending = this.pending.get(msgid);
      if (pending) {
        this.pending.delete(msgid);
        if (error === null || error === undefined) pending.resolve(result);
        else pending.reject(toRemoteError(error));
      } else if (!this.abandoned.delete(msgid)) {
        this.close(new ProtocolError(`received an answer to msgid ${msgid}, which was never asked`));
      }
    } else if (type === NOTIFICATION && message.length === 3 && typeof message[1] === 'string' && Array.isArray(message[2])) {
      // Unknown notifications are ignored, as MessagePack-RPC allows.
      try {
        this.options.notifications?.[message[1]]?.(message[2]);
      } catch {
        /* a notification has no one to answer to */
      }
    } else {
      this.close(new ProtocolError(`received a malformed message ${describe(message)}`));
    }
  }

  private async answer(msgid: number, method: string, params: unknown[]): Promise<void> {
    const handler = Object.hasOwn(this.options.methods, method) ? this.options.methods[method] : undefined;
    if (!handler) {
      this.send([RESPONSE, msgid, { message: `unknown method "${method}"` } satisfies WireError, null]);
      return;
    }
    try {
      const result = await handler(params, msgid);
      if (!this.closedReason) this.send([RESPONSE, msgid, null, result ?? null]);
    } catch (error) {
      if (!this.closedReason) this.send([RESPONSE, msgid, toWireError(error), null]);
    }
  }
}

function isMsgId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_MSGID;
}

/** An error as it crosses the wire: its message, and a client-error status if it has one. */
export function toWireError(error: unknown): WireError {
  // A Node system error in the child carries host paths; it crosses as its code, call and file (as in-process).
  const message = error instanceof Error ? failureMessage(error) : typeof error === 'string' ? error : JSON.stringify(error);
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status <= 599 ? { message, status } : { message };
}

function toRemoteError(error: unknown): RemoteError {
  if (typeof error === 'string') return new RemoteError(error);
  if (typeof error === 'object' && error !== null && typeof (error as WireError).message === 'string') {
    const status = (error as WireError).status;
    return new RemoteError((error as WireError).message, typeof status === 'number' ? status : undefined);
  }
  return new RemoteError(`error ${describe(error)}`);
}

/** A short, safe rendering of an unexpected value for messages. */
export function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return `${value.length} bytes of binary`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
