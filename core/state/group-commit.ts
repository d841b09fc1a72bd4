/**
 * Group commit of changes, durable before visible. A change is a set of key
 * mutations that must land together (a guest and its create job). Changes
 * that arrive while a commit is in progress wait and are committed together
 * in one SQLite transaction, so a burst of N changes costs a handful of
 * commits instead of N, and a burst of updates to one key (a job going
 * Queued -> Running -> Complete) writes the key once.
 *
 * Each mutation computes the key's next value from the committed one (or
 * from the changes before it in the same batch), so concurrent changes to
 * one key never lose each other. The owner's memory is updated only through
 * `apply`, after the transaction has committed: what the API shows is what
 * is on disk. When a commit fails, every change in it is rejected and
 * nothing is applied, so an error means nothing changed.
 *
 * Values coalesce, events do not: each change's events (the change feed,
 * docs/events.md) are committed in the same transaction, in the order the
 * changes arrived.
 */
import type { EventDraft } from '../events/kernel-event.js';

/**
 * One key's change. Its members are methods, not function properties: a
 * method's parameters are checked bivariantly, so a KeyChange<Guest> and a
 * KeyChange<Job> are both KeyChange<unknown> and commit together in one
 * list, without `any`. The committer only hands each change its own values.
 */
export interface KeyChange<V = unknown> {
  key: string;
  /** The key's committed value, as its owner holds it in memory. */
  current(): V | undefined;
  /**
   * The next value (undefined deletes the key). Returning the value it was
   * given writes nothing. Throwing refuses this whole change alone.
   */
  next(current: V | undefined): V | undefined;
  /**
   * The event reporting this mutation (from the value it was given and the
   * one it made), committed with it; none when it returns undefined.
   */
  event?(next: V | undefined, current: V | undefined): EventDraft | undefined;
  /**
   * Called once the value is durable: the owner makes it visible. When one
   * batch changes a key several times, only the last change's apply runs,
   * with the final value.
   */
  apply(value: V | undefined): void;
}

export interface Commit {
  upserts: Array<[string, unknown]>;
  deletes: string[];
  /** In the order their changes arrived; committed with the rows above. */
  events: EventDraft[];
}

interface Pending {
  changes: KeyChange[];
  /** Events that change no row (plugin health), after the changes' own. */
  events: EventDraft[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Staged {
  committed: unknown;
  value: unknown;
  apply: (value: unknown) => void;
}

export class GroupCommit {
  private pending: Pending[] = [];
  private committing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  /** `maxKeys` bounds one transaction's statements (SQLite caps bound parameters). */
  constructor(
    private readonly commit: (batch: Commit) => Promise<void>,
    private readonly maxKeys = 1000,
  ) {}

  /** Resolves once every mutation of `changes` (and `events`) is durable and applied. */
  write(changes: KeyChange[], events: EventDraft[] = []): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the state store is closed (the agent is stopping): nothing was written'));
    return new Promise((resolve, reject) => {
      this.pending.push({ changes, events, resolve, reject });
      if (!this.committing) this.next();
    });
  }

  /** Refuses every later write, then resolves once what was accepted is committed (or refused). */
  close(): Promise<void> {
    this.closed = true;
    return this.idle();
  }

  /** Resolves when nothing is pending or being committed. */
  idle(): Promise<void> {
    if (!this.committing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private take(): Pending[] {
    let keys = 0;
    let n = 0;
    while (n < this.pending.length && (n === 0 || keys + this.pending[n].changes.length <= this.maxKeys)) {
      keys += this.pending[n].changes.length;
      n++;
    }
    return this.pending.splice(0, n);
  }

  private next(): void {
    if (this.pending.length === 0) {
      this.committing = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    this.committing = true;
    const staged = new Map<string, Staged>();
    const accepted: Pending[] = [];
    const events: EventDraft[] = [];
    for (const p of this.take()) {
      const own = new Map<string, unknown>();
      const ownEvents: EventDraft[] = [];
      try {
        for (const c of p.changes) {
          const base = own.has(c.key) ? own.get(c.key) : staged.has(c.key) ? staged.get(c.key)!.value : c.current();
          const value = c.next(base);
          own.set(c.key, value);
          const event = value === base ? undefined : c.event?.(value, base);
          if (event) ownEvents.push(event);
        }
      } catch (error) {
        p.reject(error);
        continue;
      }
      events.push(...ownEvents, ...p.events);
      for (const c of p.changes) {
        const entry = staged.get(c.key);
        if (entry) {
          // The last change's apply runs: it knows the newest intent (a job's end).
          entry.value = own.get(c.key);
          entry.apply = c.apply as (value: unknown) => void;
        } else staged.set(c.key, { committed: c.current(), value: own.get(c.key), apply: c.apply as (value: unknown) => void });
      }
      accepted.push(p);
    }
    const upserts: Array<[string, unknown]> = [];
    const deletes: string[] = [];
    for (const [key, s] of staged) {
      if (s.value === s.committed) continue;
      if (s.value === undefined) deletes.push(key);
      else upserts.push([key, s.value]);
    }
    const written = upserts.length + deletes.length + events.length > 0 ? this.commit({ upserts, deletes, events }) : Promise.resolve();
    written
      .then(
        () => {
          for (const s of staged.values()) if (s.value !== s.committed) s.apply(s.value);
          for (const p of accepted) p.resolve();
        },
        (error) => {
          for (const p of accepted) p.reject(error);
        },
      )
      .finally(() => this.next());
  }
}
