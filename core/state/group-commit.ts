/**
 * Group commit for the state store. Writes that arrive while a commit is in
 * progress wait and are committed together in one SQLite transaction,
 * with the events that report them,, so a burst of N changes costs a handful of commits instead
 * of N. An idle store commits a write at once, alone. Every caller's
 * promise settles only when the transaction holding its write has committed
 * (or failed), so an acknowledged change is still durable.
 *
 * Callers must not put the same key twice in one batch; the CoalescingWriter
 * in front of this guarantees it (one write per key in flight).
 */
import type { EventDraft } from '../events/kernel-event.js';

export interface Commit {
  /** key -> serialized value */
  upserts: Array<[string, string]>;
  deletes: string[];
  /** In the order their writes arrived; committed with the rows above. */
  events: EventDraft[];
}

interface Pending {
  /** undefined: an event with no row change */
  key: string | undefined;
  /** undefined deletes the key */
  value: string | undefined;
  events: EventDraft[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  private pending: Pending[] = [];
  private committing = false;

  /** `maxRows` bounds one statement (SQLite caps bound parameters). */
  constructor(
    private readonly commit: (batch: Commit) => Promise<void>,
    private readonly maxRows = 1000,
  ) {}

  write(key: string | undefined, value: string | undefined, events: EventDraft[] = []): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, value, events, resolve, reject });
      if (!this.committing) this.next();
    });
  }

  private next(): void {
    if (this.pending.length === 0) {
      this.committing = false;
      return;
    }
    this.committing = true;
    const batch = this.pending.length <= this.maxRows ? this.pending : this.pending.slice(0, this.maxRows);
    this.pending = batch === this.pending ? [] : this.pending.slice(this.maxRows);
    const upserts: Array<[string, string]> = [];
    const deletes: string[] = [];
    const events: EventDraft[] = [];
    for (const w of batch) {
      if (w.key !== undefined) {
        if (w.value === undefined) deletes.push(w.key);
        else upserts.push([w.key, w.value]);
      }
      events.push(...w.events);
    }
    this.commit({ upserts, deletes, events }).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error) => {
        for (const w of batch) w.reject(error);
      },
    ).finally(() => this.next());
  }
}
