/** The last events the page saw, newest first, for the event log view (a ring of a bounded size). */
import type { AgentEvent } from '../api/types.js';
import { Observable } from './observable.js';

const KEEP = 1000;

export class EventLog extends Observable {
  private readonly ring: AgentEvent[] = [];
  private listCache: AgentEvent[] | undefined;

  add(event: AgentEvent): void {
    this.ring.push(event);
    if (this.ring.length > KEEP * 1.5) this.ring.splice(0, this.ring.length - KEEP);
    this.listCache = undefined;
    this.changed();
  }

  /** Newest first, at most KEEP. */
  list(): AgentEvent[] {
    this.listCache ??= this.ring.slice(-KEEP).reverse();
    return this.listCache;
  }
}
