/**
 * Joins the event stream to the stores. On the first open (and after a
 * `reset`) it lists guests and jobs while holding back the events that
 * arrive meanwhile, then applies those on top of the lists: the stream was
 * open before the lists were read, so nothing committed in between is
 * missed, and events carry whole objects, so replaying ones the list
 * already shows changes nothing. A reconnect with Last-Event-ID needs no
 * list: the agent replays what happened while the page was away.
 */
import type { ApiClient } from '../api/client.js';
import type { AgentEvent } from '../api/types.js';
import { EventLog } from './event-log.js';
import { EventStream } from './event-stream.js';
import { GuestStore } from './guest-store.js';
import { HostStore } from './host-store.js';
import { JobStore } from './job-store.js';

export class LiveSync {
  readonly guests = new GuestStore();
  readonly jobs = new JobStore();
  readonly log = new EventLog();
  readonly host: HostStore;
  readonly stream: EventStream;
  /** Events held back while a re-list is in flight. */
  private held: AgentEvent[] | undefined;
  private listing = 0;

  constructor(private readonly api: ApiClient) {
    this.host = new HostStore(api);
    this.stream = new EventStream(api, {
      open: (resumed) => {
        if (!resumed || !this.guests.loaded) void this.relist();
      },
      event: (event) => this.dispatch(event),
      reset: () => void this.relist(),
    });
  }

  start(): void {
    this.stream.start();
    this.host.start();
  }

  stop(): void {
    this.stream.stop();
    this.host.stop();
  }

  private dispatch(event: AgentEvent): void {
    this.log.add(event);
    if (this.held) {
      this.held.push(event);
      return;
    }
    this.apply(event);
  }

  private apply(event: AgentEvent): void {
    this.guests.apply(event);
    this.jobs.apply(event);
    this.host.apply(event);
  }

  private async relist(): Promise<void> {
    const run = ++this.listing;
    this.held ??= [];
    try {
      const [guests, jobs] = await Promise.all([this.api.guests(), this.api.jobs()]);
      if (run !== this.listing) return;
      this.guests.replaceAll(guests);
      this.jobs.replaceAll(jobs);
    } catch (error) {
      if (run !== this.listing) return;
      this.guests.failed(error instanceof Error ? error.message : String(error));
    }
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.apply(event);
  }
}
