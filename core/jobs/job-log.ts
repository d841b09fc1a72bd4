/**
 * The job log: every queued action and what became of it, in mistify's Job
 * shape. Each job is its own key in the state store, so an update writes
 * that job alone; the history is bounded and the oldest finished jobs are
 * pruned first. Queued and running jobs are never pruned.
 *
 * Ended jobs, nearly all of the log, are held as their stored row text and
 * parsed when asked for; only queued and running jobs are objects. At the
 * default history (10,000 jobs) the objects took ~10 MiB of heap, and
 * parsing every row at start-up ~100 ms: now SQLite reads the few fields
 * the log indexes by (seq, status, guest) out of each row itself.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Guest, Job, JobStatus } from '../contract/wire-types.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import { draft, type EventDraft } from '../events/kernel-event.js';

const PREFIX = 'job:';
/** Go's zero time.Time, which mistify clients see for "not yet". */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A job as stored: the wire shape plus what is needed to run it again. */
export interface StoredJob {
  seq: number;
  job: Job;
  args: Record<string, unknown>;
}

/** A job in memory: live ones as objects, ended ones as their row text (see StateStore.rowText). */
type Held = StoredJob | string;

export interface JobEnd {
  job: Job;
  /** The guest as the job left it (the last one seen, for a delete). */
  guest?: Guest;
}

export class JobLog {
  /** Insertion order = queue order (seq ascending). */
  private readonly jobs = new Map<string, Held>();
  /** Each guest's job ids, oldest first (arrays: one job per guest is common, and a Set per guest cost ~100 bytes more). */
  private readonly byGuest = new Map<string, string[]>();
  private readonly ends = new EventEmitter();
  private seq = 0;
  /** Finished job ids in the order they finished: pruning pops the front. */
  private finishedOrder: string[] = [];
  private finishedHead = 0;
  /**
   * Jobs that ended since this agent started, by outcome. Unlike the log
   * itself these are never pruned, so a client can account for every job
   * it caused however small `jobs.history` is.
   */
  readonly endedSinceStart = { complete: 0, failed: 0 };
  /** Jobs Queued and Running in this log now, kept as their statuses change. */
  private readonly liveCounts = { queued: 0, running: 0 };

  constructor(
    private readonly store: StateStore,
    private readonly history: number,
  ) {
    this.ends.setMaxListeners(0);
  }

  async load(): Promise<void> {
    const rows = await this.store.loadRowTexts(PREFIX, { seq: 'seq', status: 'job.Status', guest: 'job.GuestID' });
    const loaded = rows.map(({ id, text, seq, status, guest }) => {
      // A string Keyv escaped (one starting with ':') is read from the whole row.
      if (typeof seq !== 'number' || typeof status !== 'string' || typeof guest !== 'string' || status.startsWith(':') || guest.startsWith(':')) {
        const stored = this.store.fromRowText<StoredJob>(text);
        return { id, seq: stored.seq, guest: stored.job.GuestID, held: isFinished(stored.job.Status) ? text : stored };
      }
      return { id, seq, guest, held: isFinished(status as JobStatus) ? text : this.store.fromRowText<StoredJob>(text) };
    });
    loaded.sort((a, b) => a.seq - b.seq);
    for (const { id, guest, held } of loaded) this.index(id, guest, held);
    this.seq = loaded.length ? loaded[loaded.length - 1].seq : 0;
    this.prune();
  }

  /** Jobs with the given status, oldest first. */
  withStatus(status: JobStatus): Array<{ job: Job; args: Record<string, unknown> }> {
    const out = [];
    for (const held of this.jobs.values()) {
      // Held text is an ended job: read only when ended ones are asked for.
      const entry = typeof held === 'string' ? (isFinished(status) ? this.unheld(held) : undefined) : held;
      if (entry?.job.Status === status) out.push({ job: entry.job, args: entry.args });
    }
    return out;
  }

  get(id: string): Job | undefined {
    return this.entry(id)?.job;
  }

  argsOf(id: string): Record<string, unknown> {
    return this.entry(id)?.args ?? {};
  }

  /** Newest first. */
  list(limit: number): Job[] {
    const all = [...this.jobs.values()];
    const out: Job[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) out.push(this.unheld(all[i]).job);
    return out;
  }

  /** A guest's jobs, newest first. */
  forGuest(guestId: string, limit: number): Job[] {
    const ids = [...(this.byGuest.get(guestId) ?? [])];
    const out: Job[] = [];
    for (let i = ids.length - 1; i >= 0 && out.length < limit; i--) {
      const entry = this.entry(ids[i]);
      if (entry) out.push(entry.job);
    }
    return out;
  }

  /**
   * A new Queued job and the change that records it; the job is in the log
   * once the change is durable. Commit it alone (create) or with the
   * change it belongs to (a new guest and its create job land together).
   */
  createChange(guestId: string, action: string, args: Record<string, unknown>): { job: Job; change: KeyChange<StoredJob> } {
    const now = new Date().toISOString();
    const job: Job = {
      ID: randomUUID(),
      GuestID: guestId,
      Action: action,
      QueuedAt: now,
      StartedAt: ZERO_TIME,
      UpdatedAt: now,
      Status: 'Queued',
      Message: '',
    };
    const entry: StoredJob = { seq: ++this.seq, job, args };
    const change: KeyChange<StoredJob> = {
      key: PREFIX + job.ID,
      current: () => this.entry(job.ID),
      next: () => entry,
      event: () => draft('job.queued', { job }, guestId),
      apply: (stored) => {
        if (!stored) return;
        this.index(stored.job.ID, stored.job.GuestID, this.hold(stored));
        this.prune();
      },
    };
    return { job, change };
  }

  /** A new Queued job, durable when the promise resolves. */
  async create(guestId: string, action: string, args: Record<string, unknown>): Promise<Job> {
    const { job, change } = this.createChange(guestId, action, args);
    await this.store.change(change);
    return job;
  }

  /**
   * The change that updates job `id`; `guest` is what waiters on the job's
   * end see (the guest as the job left it; a function is read once the
   * change is durable, after a guest change committed with it is applied).
   */
  updateChange(id: string, change: Partial<Pick<Job, 'Status' | 'Message' | 'StartedAt'>>, guest?: Guest | (() => Guest | undefined)): KeyChange<StoredJob> {
    return {
      key: PREFIX + id,
      current: () => this.entry(id),
      next: (current) => {
        if (!current) throw new Error(`job ${id} is not in the log`);
        return { ...current, job: { ...current.job, ...change, UpdatedAt: new Date().toISOString() } };
      },
      event: (next, current) => (next && next.job.Status !== current?.job.Status ? statusEvent(next.job) : undefined),
      apply: (stored) => {
        const before = this.jobs.get(id);
        if (!stored || !before) return;
        this.countLive(before, -1);
        this.jobs.set(id, this.hold(stored));
        this.countLive(stored, 1);
        // Held text is an ended job.
        if (typeof before !== 'string' && !isFinished(before.job.Status) && isFinished(stored.job.Status)) {
          this.finishedOrder.push(id);
          this.endedSinceStart[stored.job.Status === 'Complete' ? 'complete' : 'failed']++;
          this.ends.emit(id, { job: stored.job, guest: typeof guest === 'function' ? guest() : guest } satisfies JobEnd);
          this.prune();
        }
      },
    };
  }

  async update(id: string, change: Partial<Pick<Job, 'Status' | 'Message' | 'StartedAt'>>, guest?: Guest): Promise<Job> {
    const update = this.updateChange(id, change, guest);
    let result: StoredJob | undefined;
    const next = update.next;
    update.next = (current) => (result = next(current));
    await this.store.change(update);
    return result!.job;
  }

  /**
   * Wait up to `timeoutMs` for a job to end; undefined if it is still going
   * (or unknown). A job that already ended answers at once, with the guest
   * `current` gives for it (ended jobs keep no guest).
   */
  async waitFor(id: string, timeoutMs: number, current?: (job: Job) => Guest | undefined): Promise<JobEnd | undefined> {
    const job = this.get(id);
    if (!job) return undefined;
    if (isFinished(job.Status)) return { job, guest: current?.(job) };
    return this.waitForEnd(id, timeoutMs);
  }

  /**
   * Resolves when the job ends, or with undefined at the deadline.
   * The caller checks the job's status first; this only waits.
   */
  waitForEnd(id: string, timeoutMs: number): Promise<JobEnd | undefined> {
    return new Promise((resolve) => {
      const onEnd = (end: JobEnd) => {
        clearTimeout(timer);
        resolve(end);
      };
      const timer = setTimeout(() => {
        this.ends.off(id, onEnd);
        resolve(undefined);
      }, timeoutMs);
      this.ends.once(id, onEnd);
    });
  }

  get size(): number {
    return this.jobs.size;
  }

  /** How many jobs of the log are Queued and Running now: what GET /jobs lists, counted. */
  get live(): { queued: number; running: number } {
    return { ...this.liveCounts };
  }

  private countLive(held: Held | undefined, delta: 1 | -1): void {
    if (held === undefined || typeof held === 'string') return;
    if (held.job.Status === 'Queued') this.liveCounts.queued += delta;
    else if (held.job.Status === 'Running') this.liveCounts.running += delta;
  }

  /** Job `id` as stored, parsed from its text if it has ended. */
  private entry(id: string): StoredJob | undefined {
    const held = this.jobs.get(id);
    return held === undefined ? undefined : this.unheld(held);
  }

  private unheld(held: Held): StoredJob {
    return typeof held === 'string' ? this.store.fromRowText<StoredJob>(held) : held;
  }

  /** What memory keeps of a stored job: an ended one as its row text. */
  private hold(stored: StoredJob): Held {
    return isFinished(stored.job.Status) ? (this.store.rowText(stored) ?? stored) : stored;
  }

  private index(id: string, guestId: string, held: Held): void {
    this.jobs.set(id, held);
    this.countLive(held, 1);
    if (typeof held === 'string' || isFinished(held.job.Status)) this.finishedOrder.push(id);
    const ids = this.byGuest.get(guestId);
    if (ids) ids.push(id);
    else this.byGuest.set(guestId, [id]);
  }

  /** Drop the oldest finished jobs beyond the history bound. */
  private prune(): void {
    while (this.jobs.size > this.history && this.finishedHead < this.finishedOrder.length) {
      const id = this.finishedOrder[this.finishedHead++];
      const entry = this.entry(id);
      if (!entry) continue;
      this.jobs.delete(id);
      const ids = this.byGuest.get(entry.job.GuestID);
      const at = ids?.indexOf(id) ?? -1;
      if (at >= 0) ids!.splice(at, 1);
      if (ids && ids.length === 0) this.byGuest.delete(entry.job.GuestID);
      // Gone from memory at once: a failed delete only leaves an extra row,
      // pruned again after the next restart.
      void this.store.change({ key: PREFIX + id, current: () => entry, next: () => undefined, apply: () => undefined }).catch(() => undefined);
    }
    // Compact the consumed front now and then instead of shifting per prune.
    if (this.finishedHead > 4096 && this.finishedHead * 2 > this.finishedOrder.length) {
      this.finishedOrder = this.finishedOrder.slice(this.finishedHead);
      this.finishedHead = 0;
    }
  }
}

const STATUS_EVENTS = { Queued: 'job.queued', Running: 'job.started', Complete: 'job.completed', Error: 'job.failed' } as const;

function statusEvent(job: Job): EventDraft {
  return draft(STATUS_EVENTS[job.Status], { job }, job.GuestID);
}

export function isFinished(status: JobStatus): boolean {
  return status === 'Complete' || status === 'Error';
}
