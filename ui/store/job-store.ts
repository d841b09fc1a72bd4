/**
 * Recent jobs (guest and host jobs alike), newest first: GET /jobs on
 * start and after a `reset`, then every job event. Kept to a bounded
 * number so a long-open page does not grow without end.
 */
import type { AgentEvent, Job, JobView } from '../api/types.js';
import { Observable } from './observable.js';

const KEEP = 500;

export class JobStore extends Observable {
  private readonly byId = new Map<string, JobView>();
  private listCache: JobView[] | undefined;
  loaded = false;

  get(id: string): JobView | undefined {
    return this.byId.get(id);
  }

  /** Newest first (by QueuedAt, then id). */
  list(): JobView[] {
    this.listCache ??= [...this.byId.values()].sort((a, b) => b.QueuedAt.localeCompare(a.QueuedAt) || b.ID.localeCompare(a.ID));
    return this.listCache;
  }

  /** A guest's jobs, newest first. */
  forGuest(guestId: string): JobView[] {
    return this.list().filter((job) => job.GuestID === guestId);
  }

  replaceAll(jobs: JobView[]): void {
    this.byId.clear();
    for (const job of jobs) this.byId.set(job.ID, job);
    this.loaded = true;
    this.touch();
  }

  /** A job the page learnt of otherwise (an answer's X-Guest-Job-ID, then GET /jobs/ID). */
  put(job: JobView): void {
    const known = this.byId.get(job.ID);
    // A job never goes back: an older answer must not overwrite a newer event.
    if (known && known.UpdatedAt > job.UpdatedAt) return;
    this.byId.set(job.ID, job);
    this.touch();
  }

  apply(event: AgentEvent): void {
    if (!event.type.startsWith('job.') || !event.data.job) return;
    const job: Job = event.data.job;
    const known = this.byId.get(job.ID);
    // Progress fields (Stage) come from GET /jobs only; an event's job keeps them until it ends.
    const next: JobView = known && job.Status === 'Running' ? { ...known, ...job } : job;
    this.byId.set(job.ID, next);
    this.trim();
    this.touch();
  }

  private trim(): void {
    if (this.byId.size <= KEEP) return;
    const oldest = [...this.byId.values()].sort((a, b) => a.QueuedAt.localeCompare(b.QueuedAt));
    for (const job of oldest.slice(0, this.byId.size - KEEP)) this.byId.delete(job.ID);
  }

  private touch(): void {
    this.listCache = undefined;
    this.changed();
  }
}
