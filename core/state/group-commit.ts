/**
 * Group commit for the state store. Writes that arrive while a commit is in
 * progress wait and are committed together as one statement (one SQLite
 * transaction), so a burst of N changes costs a handful of commits instead
 * of N. An idle store commits a write at once, alone. Every caller's
 * promise settles only when the statement holding its write has committed
 * (or failed), so an acknowledged change is still durable.
 *
 * Callers must not put the same key twice in one batch; the CoalescingWriter
 * in front of this guarantees it (one write per key in flight).
 */
export interface Commit {
  /** key -> serialized value */
  upserts: Array<[string, string]>;
  deletes: string[];
}

interface Pending {
  key: string;
  /** undefined deletes the key */
  value: string | undefined;
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

  write(key: string, value: string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, value, resolve, reject });
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
    for (const w of batch) {
      if (w.value === undefined) deletes.push(w.key);
      else upserts.push([w.key, w.value]);
    }
    this.commit({ upserts, deletes }).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (error) => {
        for (const w of batch) w.reject(error);
      },
    ).finally(() => this.next());
  }
}
