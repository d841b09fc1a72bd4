/**
 * Guests that moved away from this host (a completed migration), so that a
 * client still asking this agent for one is told where it went (404
 * HK_ERR_GUEST_MOVED with a Location header, core/http/moved-guest-check.ts)
 * instead of a bare "no such guest".
 *
 * Each record is a row of the state file ("moved:<id>"), written when the
 * move completes, in the same transaction as the guest's removal when the
 * caller commits both together (see `change`), so a restarted agent still
 * knows. The records are bounded: at most `keep` of them (the oldest go
 * first) and none older than `maxAgeDays` (an expired one is never answered
 * and is pruned with the next write). A guest that comes back (a move back,
 * a create with the same id) is served again at once: the registry is asked
 * first; its record is then removed.
 */
import type { KeyChange, StateStore } from '../state/state-store.js';

const PREFIX = 'moved:';
export const MOVED_GUESTS_KEPT = 10_000;
export const MOVED_GUESTS_MAX_AGE_DAYS = 30;
const DAY_MS = 86_400_000;

/** Where a guest went. */
export interface MovedTo {
  /** The fleet's id of the host, when the move named one (or the target told it). */
  hostId?: string;
  /** The target agent's API base URL, e.g. http://10.0.1.7:8080. */
  url: string;
}

export interface MovedGuest extends MovedTo {
  id: string;
  /** RFC 3339. */
  movedAt: string;
}

export interface MovedGuestsOptions {
  keep?: number;
  maxAgeDays?: number;
  /** The clock (tests move it). */
  now?: () => number;
}

export class MovedGuests {
  /** Oldest first (records are only ever added with the current time). */
  private readonly records = new Map<string, MovedGuest>();
  private readonly keep: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: StateStore,
    options: MovedGuestsOptions = {},
  ) {
    this.keep = options.keep ?? MOVED_GUESTS_KEPT;
    this.maxAgeMs = (options.maxAgeDays ?? MOVED_GUESTS_MAX_AGE_DAYS) * DAY_MS;
    this.now = options.now ?? Date.now;
  }

  async load(): Promise<void> {
    const rows = await this.store.loadAll<MovedGuest>(PREFIX);
    rows.sort(([, a], [, b]) => a.movedAt.localeCompare(b.movedAt));
    for (const [id, record] of rows) this.records.set(id, record);
    const stale = this.prunable(0);
    if (stale.length > 0) await this.store.change(...stale);
  }

  /** Records held (expired ones included until the next write prunes them). */
  get size(): number {
    return this.records.size;
  }

  /** Where guest `id` went, unless it never moved from here or its record expired. */
  find(id: string): MovedGuest | undefined {
    const record = this.records.get(id);
    if (!record || this.expired(record)) return undefined;
    return record;
  }

  /**
   * The changes that record guest `id` as moved to `to`: its row, and the
   * removal of the records beyond the bounds. Commit them with the guest's
   * removal from the registry (`store.change(registry.change(id, () =>
   * undefined), ...moved.change(id, to))`) so both land or neither does.
   */
  change(id: string, to: MovedTo): KeyChange[] {
    const record: MovedGuest = { id, ...(to.hostId ? { hostId: to.hostId } : {}), url: to.url, movedAt: new Date(this.now()).toISOString() };
    const write: KeyChange<MovedGuest> = {
      key: PREFIX + id,
      current: () => this.records.get(id),
      next: () => record,
      apply: (value) => {
        // Re-added last: the map stays oldest first.
        this.records.delete(id);
        if (value) this.records.set(id, value);
      },
    };
    return [write, ...this.prunable(1, id)];
  }

  /** Records guest `id` as moved to `to`; durable when the promise resolves. */
  async record(id: string, to: MovedTo): Promise<void> {
    await this.store.change(...this.change(id, to));
  }

  /** Drops guest `id`'s record (it is back on this host); durable when the promise resolves. */
  async forget(id: string): Promise<void> {
    if (!this.records.has(id)) return;
    await this.store.change(this.removal(id));
  }

  private expired(record: MovedGuest): boolean {
    return this.now() - Date.parse(record.movedAt) > this.maxAgeMs;
  }

  /** Removals of expired records and of the oldest ones, so that `adding` more fit under `keep`. */
  private prunable(adding: number, except?: string): KeyChange[] {
    const out: KeyChange[] = [];
    let over = this.records.size - (except !== undefined && this.records.has(except) ? 1 : 0) + adding - this.keep;
    for (const [id, record] of this.records) {
      if (id === except) continue;
      if (over > 0) {
        over--;
        out.push(this.removal(id));
      } else if (this.expired(record)) out.push(this.removal(id));
      else break;
    }
    return out;
  }

  private removal(id: string): KeyChange<MovedGuest> {
    return { key: PREFIX + id, current: () => this.records.get(id), next: () => undefined, apply: () => this.records.delete(id) };
  }
}
