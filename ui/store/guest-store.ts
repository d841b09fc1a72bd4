/**
 * Every guest of the agent, kept current from the event stream: a full
 * list (GET /guests) when the page starts or the stream says `reset`, then
 * each guest event's committed snapshot. Events carry whole guests, so
 * applying them in id order always ends on the newest state: no stale row.
 */
import type { AgentEvent, Guest } from '../api/types.js';
import { Observable } from './observable.js';

export class GuestStore extends Observable {
  private readonly byId = new Map<string, Guest>();
  private listCache: Guest[] | undefined;
  /** The first full list arrived. */
  loaded = false;
  /** Why the last full list failed, if it did. */
  error: string | undefined;

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Guest | undefined {
    return this.byId.get(id);
  }

  /** Every guest (the same array until something changes). */
  list(): Guest[] {
    this.listCache ??= [...this.byId.values()];
    return this.listCache;
  }

  replaceAll(guests: Guest[]): void {
    this.byId.clear();
    for (const guest of guests) this.byId.set(guest.id, guest);
    this.loaded = true;
    this.error = undefined;
    this.touch();
  }

  failed(message: string): void {
    this.error = message;
    this.changed();
  }

  /** Applies one event of the stream; anything not about a guest is ignored. */
  apply(event: AgentEvent): void {
    switch (event.type) {
      case 'guest.created':
      case 'guest.changed':
      case 'guest.observed':
        if (event.data.guest) {
          this.byId.set(event.data.guest.id, event.data.guest);
          this.touch();
        }
        break;
      case 'guest.deleted': {
        const id = event.data.guestId ?? event.guest;
        if (id !== undefined && this.byId.delete(id)) this.touch();
        break;
      }
    }
  }

  private touch(): void {
    this.listCache = undefined;
    this.changed();
  }
}
