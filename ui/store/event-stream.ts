/**
 * GET /events, kept open: read with fetch (not EventSource, which cannot
 * send the Authorization header), parsed with eventsource-parser, and
 * reconnected whenever it ends (agent restart, `overflow`, `closing`, a
 * network cut) with Last-Event-ID, so the agent replays exactly what was
 * missed. `reset` (the history was pruned, or the agent's data dir is
 * another) tells the owner to re-list. A stream that goes silent longer
 * than a few heartbeats is treated as dead and reopened.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { ApiError, type ApiClient } from '../api/client.js';
import type { AgentEvent } from '../api/types.js';
import { Observable } from './observable.js';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'unauthorized' | 'stopped';

export interface StreamHandlers {
  /** The stream is open; `resumed`: it replays from Last-Event-ID (no re-list needed). */
  open(resumed: boolean): void;
  event(event: AgentEvent): void;
  /** The agent could not replay from our last id: re-list everything. */
  reset(): void;
}

/** Silence after which the stream is presumed dead (the agent sends a heartbeat every 15 s by default). */
const SILENCE_MS = 50_000;
const MAX_BACKOFF_MS = 8_000;

export class EventStream extends Observable {
  status: StreamStatus = 'connecting';
  /** The id of the last event seen: what a reconnect resumes after. */
  lastId: number | undefined;
  /** Why the last connection ended, when it failed. */
  lastError: string | undefined;
  /** Successful opens after the first. */
  reconnects = 0;
  private abort: AbortController | undefined;
  /** Each start() runs one loop; a loop whose run is no longer current ends. */
  private run = 0;
  private retryMs = 1000;
  private opened = 0;

  constructor(
    private readonly api: ApiClient,
    private readonly handlers: StreamHandlers,
  ) {
    super();
  }

  start(): void {
    void this.loop(++this.run);
  }

  stop(): void {
    this.run++;
    this.abort?.abort();
    this.setStatus('stopped');
  }

  /** Drop the current connection and open another at once (after a new token). */
  restart(): void {
    this.stop();
    this.start();
  }

  private setStatus(status: StreamStatus, error?: string): void {
    this.status = status;
    this.lastError = error;
    this.changed();
  }

  private async loop(run: number): Promise<void> {
    const stopped = () => run !== this.run;
    let failures = 0;
    while (!stopped()) {
      this.setStatus(this.opened === 0 ? 'connecting' : 'reconnecting', this.lastError);
      try {
        await this.connect(stopped);
        failures = 0;
      } catch (error) {
        if (stopped()) return;
        if (error instanceof ApiError && error.status === 401) {
          this.setStatus('unauthorized', error.message);
          return;
        }
        failures++;
        this.lastError = error instanceof Error ? error.message : String(error);
      }
      if (stopped()) return;
      this.setStatus('reconnecting', this.lastError);
      await sleep(Math.min(this.retryMs * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS));
    }
  }

  /** One connection, until it ends; throws when it could not open or broke. */
  private async connect(stopped: () => boolean): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    const resumed = this.lastId !== undefined;
    if (resumed) headers['Last-Event-ID'] = String(this.lastId);
    const res = await this.api.fetch('GET', '/events', { headers, signal: abort.signal });
    if (!res.body) throw new Error('the event stream has no body');
    if (this.opened++ > 0) this.reconnects++;
    this.setStatus('live');
    this.handlers.open(resumed);
    let ended = false;
    const parser = createParser({
      onEvent: (message) => {
        if (this.onMessage(message) === 'end') ended = true;
      },
      onRetry: (ms) => {
        this.retryMs = Math.max(250, Math.min(ms, MAX_BACKOFF_MS));
      },
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
    try {
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
        parser.feed(value);
      }
    } catch (error) {
      if (stopped()) return;
      throw new Error(`the event stream broke (${error instanceof Error ? error.message : String(error)})`);
    } finally {
      clearTimeout(watchdog);
      abort.abort();
    }
    if (!ended && !stopped()) throw new Error('the agent closed the event stream');
  }

  private onMessage(message: EventSourceMessage): 'end' | undefined {
    const type = message.event ?? 'message';
    // The stream ends itself with these; reconnecting with Last-Event-ID continues.
    if (type === 'overflow' || type === 'closing') {
      this.lastError = type === 'closing' ? 'the agent is stopping' : 'the agent cut the stream (this page read too slowly)';
      return 'end';
    }
    if (message.id !== undefined && /^\d+$/.test(message.id)) this.lastId = Number(message.id);
    if (type === 'reset') {
      this.handlers.reset();
      return undefined;
    }
    let event: AgentEvent;
    try {
      event = JSON.parse(message.data) as AgentEvent;
    } catch {
      return undefined;
    }
    this.handlers.event(event);
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
