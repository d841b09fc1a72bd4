/**
 * core/events: the durable event log as a change feed, GET /events (SSE)
 * framing and filters, plugin health polling.
 * May import: contract, state, errors, logger.
 *
 * The kernel's change feed: every committed event, in id order, to
 * in-process subscribers (the SSE route, the fleet mirror). `follow` joins
 * the durable history to the live stream: it replays what was committed
 * after a given id, then goes live, with no gap and no duplicate.
 *
 * Ids are contiguous (1, 2, 3, ...: a failed commit uses none), so a replay
 * that finds a hole knows retention pruned it and answers with a reset.
 */
import type { KernelEvent } from './kernel-event.js';

export interface EventHistory {
  /** Committed events with after < id <= upTo, oldest first, at most `limit`. */
  read(after: number, upTo: number, limit: number): Promise<KernelEvent[]>;
}

export interface ResetNotice {
  /** The id the follower asked to resume after. */
  requested: number;
  /** The id the stream resumes after (the newest committed one). */
  resumeAfter: number;
  reason: string;
}

export interface FeedSink {
  /** During replay the feed waits for a returned promise (backpressure). */
  event(event: KernelEvent): void | Promise<void>;
  /** The requested history is gone (retention) or foreign: re-list, then follow from `resumeAfter`. */
  reset(notice: ResetNotice): void;
  /** Live events piled up beyond the backlog bound while replaying; the follower is closed. */
  overflow(): void;
}

export interface Follower {
  close(): void;
}

type Listener = (event: KernelEvent) => void;

const REPLAY_PAGE = 500;

export class ChangeFeed {
  private latest: number;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly history: EventHistory,
    latestId: number,
  ) {
    this.latest = latestId;
  }

  /** The id of the newest committed event (0 when there is none). */
  get latestId(): number {
    return this.latest;
  }

  /** Live events only, from now on. Returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The state store calls this right after each commit, in id order. */
  publish(events: KernelEvent[]): void {
    for (const event of events) {
      this.latest = event.id;
      for (const listener of this.listeners) listener(event);
    }
  }

  /**
   * Every event after `after` (undefined: from now), then live ones.
   * `maxBacklog` bounds the live events held while the replay runs.
   */
  follow(after: number | undefined, sink: FeedSink, maxBacklog = 10_000): Follower {
    let closed = false;
    let live = false;
    let last = 0;
    const held: KernelEvent[] = [];
    const close = () => {
      closed = true;
      unsubscribe();
    };
    // Subscribe before reading the watermark: an event committed meanwhile
    // is both held and replayed, and the id check drops the second copy.
    const unsubscribe = this.subscribe((event) => {
      if (closed) return;
      if (!live) {
        held.push(event);
        if (held.length > maxBacklog) {
          close();
          sink.overflow();
        }
        return;
      }
      if (event.id > last) {
        last = event.id;
        void sink.event(event);
      }
    });
    const watermark = this.latest;
    const run = async () => {
      last = after ?? watermark;
      if (after !== undefined && after !== watermark) {
        last = await this.replay(after, watermark, sink, () => closed);
      }
      if (closed) return;
      live = true;
      for (const event of held.splice(0)) {
        if (event.id > last) {
          last = event.id;
          void sink.event(event);
        }
      }
    };
    run().catch(() => {
      // A history read failed: the follower cannot prove it has everything.
      if (closed) return;
      close();
      sink.reset({ requested: after ?? watermark, resumeAfter: this.latest, reason: 'the event history could not be read' });
    });
    return { close };
  }

  /** Replays (after, watermark]; returns the id the stream continues after. */
  private async replay(after: number, watermark: number, sink: FeedSink, isClosed: () => boolean): Promise<number> {
    if (after > watermark) {
      sink.reset({ requested: after, resumeAfter: watermark, reason: `event ${after} was never issued by this agent (newest is ${watermark})` });
      return watermark;
    }
    let cursor = after;
    while (cursor < watermark && !isClosed()) {
      const page = await this.history.read(cursor, watermark, REPLAY_PAGE);
      if (page.length === 0 || page[0].id !== cursor + 1) {
        sink.reset({ requested: after, resumeAfter: watermark, reason: `events after ${cursor} are past retention` });
        return watermark;
      }
      for (const event of page) {
        if (isClosed()) return cursor;
        await sink.event(event);
        cursor = event.id;
      }
    }
    return cursor;
  }
}

const jsonCache = new WeakMap<KernelEvent, string>();

/** The event as JSON text, encoded once however many readers send it. */
export function eventJson(event: KernelEvent): string {
  let text = jsonCache.get(event);
  if (text === undefined) {
    text = JSON.stringify(event);
    jsonCache.set(event, text);
  }
  return text;
}
