/**
 * One GET /events connection: SSE framing (id/event/data lines), heartbeat
 * comments, and a bound on what the client leaves unread. The agent never
 * waits for a live client: a client whose unread bytes pass the bound gets a
 * final `overflow` event and is disconnected; it reconnects with
 * Last-Event-ID and replays what it missed.
 */
import type { ServerResponse } from 'node:http';
import { eventJson, type ChangeFeed, type Follower, type ResetNotice } from './change-feed.js';
import type { EventFilter } from './event-filter.js';
import type { KernelEvent } from './kernel-event.js';

export interface SseOptions {
  heartbeatMs: number;
  bufferBytes: number;
}

/** How long a cut-off client gets to take its final event before the socket is destroyed. */
const FINAL_FLUSH_MS = 5000;
/** The reconnect delay an EventSource is told to use. */
const RECONNECT_MS = 1000;

export class SseStream {
  private follower?: Follower;
  private heartbeat?: NodeJS.Timeout;
  private ended = false;
  private lastId = 0;
  private drained?: Promise<void>;

  constructor(
    private readonly res: ServerResponse,
    private readonly filter: EventFilter,
    private readonly options: SseOptions,
    private readonly onEnd: (stream: SseStream) => void,
  ) {
    res.on('close', () => this.cleanup());
  }

  start(feed: ChangeFeed, after: number | undefined): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.res.socket?.setNoDelay(true);
    // A first block so clients see the stream open before any event; a
    // restarted agent is back within seconds, so reconnect soon.
    this.res.write(`retry: ${RECONNECT_MS}\n: hyperkern events\n\n`);
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), this.options.heartbeatMs);
    this.follower = feed.follow(after, {
      event: (event) => this.event(event),
      reset: (notice) => this.reset(notice),
      overflow: () => this.finish('overflow', { reason: 'events arrived faster than this client read them during replay; reconnect with Last-Event-ID' }),
    });
  }

  /** Ends the stream (agent stopping). */
  close(reason: string): void {
    this.finish('closing', { reason });
  }

  private event(event: KernelEvent): void | Promise<void> {
    if (this.ended) return;
    this.lastId = event.id;
    if (!this.filter(event)) return;
    const ok = this.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${eventJson(event)}\n\n`);
    // Replay waits for the socket to drain; live events never wait.
    if (!ok && !this.ended) return this.whenDrained();
  }

  /**
   * Resolves once the socket drains or closes. One wait per stream, shared by
   * every event that finds the buffer full: a listener pair per event would
   * pile up on the response while a slow client reads.
   */
  private whenDrained(): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done).off('close', done);
        this.drained = undefined;
        resolve();
      };
      this.res.once('drain', done).once('close', done);
    });
    return this.drained;
  }

  private reset(notice: ResetNotice): void {
    this.lastId = notice.resumeAfter;
    this.write(`id: ${notice.resumeAfter}\nevent: reset\ndata: ${JSON.stringify(notice)}\n\n`);
  }

  /** false when the socket buffer is full (replay then waits for drain). */
  private write(text: string): boolean {
    if (this.ended) return true;
    const ok = this.res.write(text);
    if (this.res.writableLength > this.options.bufferBytes) {
      this.finish('overflow', { reason: `more than ${this.options.bufferBytes} bytes unread; reconnect with Last-Event-ID` });
    }
    return ok;
  }

  private finish(type: string, data: Record<string, unknown>): void {
    if (this.ended) return;
    this.ended = true;
    this.res.write(`event: ${type}\ndata: ${JSON.stringify({ ...data, lastEventId: this.lastId })}\n\n`);
    this.res.end();
    // A client that never reads would hold the socket and its buffer forever.
    setTimeout(() => this.res.destroy(), FINAL_FLUSH_MS).unref();
    this.cleanup();
  }

  private cleanup(): void {
    this.ended = true;
    clearInterval(this.heartbeat);
    this.follower?.close();
    this.onEnd(this);
  }
}
