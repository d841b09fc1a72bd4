/**
 * Per-guest FIFO queues under a global concurrency limit. A guest never has
 * two jobs running at once (lifecycle actions on one machine must not
 * interleave); different guests run in parallel, at most `concurrency` at a
 * time, taking turns in the order their jobs became ready.
 */
export type JobExecutor = (guestId: string, jobId: string) => Promise<void>;

export class JobScheduler {
  private readonly queues = new Map<string, string[]>();
  /** Guests with queued work and nothing running, oldest first. */
  private ready: string[] = [];
  private readyHead = 0;
  private readonly busy = new Set<string>();
  private running = 0;
  private paused = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly execute: JobExecutor,
  ) {}

  enqueue(guestId: string, jobId: string): void {
    let queue = this.queues.get(guestId);
    if (!queue) {
      this.queues.set(guestId, (queue = []));
      if (!this.busy.has(guestId)) this.ready.push(guestId);
    }
    queue.push(jobId);
    this.pump();
  }

  /** Take a queued job out of its guest's queue; false if it is not queued here. */
  remove(guestId: string, jobId: string): boolean {
    const queue = this.queues.get(guestId);
    const index = queue?.indexOf(jobId) ?? -1;
    if (index < 0) return false;
    queue!.splice(index, 1);
    // A guest left in `ready` with no queue is skipped by pump (no job to shift).
    if (queue!.length === 0) this.queues.delete(guestId);
    return true;
  }

  /** 1 for the job its guest runs next, 2 after it...; undefined if not queued. */
  position(guestId: string, jobId: string): number | undefined {
    const index = this.queues.get(guestId)?.indexOf(jobId) ?? -1;
    return index < 0 ? undefined : index + 1;
  }

  get runningCount(): number {
    return this.running;
  }

  get queuedCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Start no new jobs (agent shutdown); queued ones stay queued in the store. */
  pause(): void {
    this.paused = true;
  }

  /** Resolves when no job is running. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Agent shutdown: pause, then wait up to `graceMs` for running jobs. False when some still run. */
  async drain(graceMs: number): Promise<boolean> {
    this.pause();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const idle = await Promise.race([this.idle().then(() => true as const), graceOver]);
    clearTimeout(timer);
    return idle;
  }

  private pump(): void {
    while (!this.paused && this.running < this.concurrency && this.readyHead < this.ready.length) {
      const guestId = this.ready[this.readyHead++];
      // A guest can be listed twice (its queue emptied by a cancel, then refilled): never run two of its jobs.
      if (this.busy.has(guestId)) continue;
      const queue = this.queues.get(guestId);
      const jobId = queue?.shift();
      if (!jobId) continue;
      if (queue!.length === 0) this.queues.delete(guestId);
      this.busy.add(guestId);
      this.running++;
      this.execute(guestId, jobId)
        .catch(() => {
          /* the executor records its own failures in the job */
        })
        .finally(() => this.finished(guestId));
    }
    if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
  }

  private finished(guestId: string): void {
    this.running--;
    this.busy.delete(guestId);
    if (this.queues.has(guestId)) this.ready.push(guestId);
    this.pump();
    if (this.running === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}
