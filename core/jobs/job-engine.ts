/**
 * core/jobs: action names and plans, the job engine and the executors of
 * each kind of job (lifecycle, snapshot, image), the request side of each
 * kind, and the job log.
 * May import: contract, config, plugins, guests, state, events, errors, logger.
 *
 * The job engine: every job of every kind is queued, run, cancelled,
 * stopped and recovered here, one way. A kind of job contributes an
 * executor (which actions it runs, the queue a job waits on, how to run
 * one, what else lands with a failure); the engine owns the rest:
 *
 * - queues: one FIFO queue per key, one job of a key running at a time,
 *   at most `jobs.concurrency` jobs running at once across all keys. A
 *   guest's jobs (lifecycle and snapshot alike) wait on the guest's id; a
 *   host job waits on the key its executor names (image jobs: `image:<id>`,
 *   so two jobs on one image never interleave and different images run in
 *   parallel). Guest ids are UUIDs, so no host key is ever a guest's.
 * - states: Queued (durable before the request is answered), Running
 *   (durable before the first stage; a job that cannot be marked stays
 *   Queued in the store and runs at the next start), Complete or Error,
 *   committed together with what the job changed.
 * - cancel: a queued job leaves its queue and ends Error "cancelled" at
 *   once; a running job's stages get its AbortSignal and it ends when its
 *   stage returns.
 * - shutdown: no new jobs, running ones get the grace period, then every
 *   stage's shutdown signal fires; queued jobs stay queued for the next start.
 * - recovery: jobs left Running were cut off and end Error "interrupted by
 *   agent restart"; Queued ones run again in their original order.
 * - telemetry: every stage call and every job's run time, by kind alike.
 * - events: each status change is a job event in the change feed (the job
 *   log's changes carry them).
 */
import { Errors, messageOf } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { JobEnd, JobLog } from './job-log.js';
import { JobScheduler } from './job-scheduler.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import { runStage, stageShutdownController, type PlannedStage, type StageRun } from '../plugins/stage-runner.js';
import type { KeyChange, StateStore } from '../state/state-store.js';
import type { Logger, StageContext, StageRequest } from '../contract/plugin-api.js';
import type { Guest, Job } from '../contract/wire-types.js';

/** After the shutdown deadline aborts their stages: time for the jobs to record their end. */
const ABORTED_JOBS_SETTLE_MS = 2000;

export type JobOutcome = 'complete' | 'error' | 'cancelled';

/** Stage and job durations for GET /metrics; set by the kernel. */
export interface JobTelemetry {
  stage(stage: string, seconds: number, failed: boolean): void;
  job(action: string, outcome: JobOutcome, seconds: number): void;
}

/** What an executor gets to run one job. */
export interface JobRun {
  readonly job: Job;
  /** The args stored with the job (request query args, and what the kind stored to run it). */
  readonly args: Record<string, unknown>;
  readonly log: Logger;
  /** Fires when the job is cancelled. */
  readonly cancel: AbortSignal;
  /** Fires at the agent's shutdown deadline. */
  readonly shutdown: AbortSignal;
  /**
   * Runs a stage of the job: timed for GET /metrics, shown as the job's
   * `Stage`, aborted by a cancel or the shutdown deadline. A job cancelled
   * before the call runs no further stage (it throws "cancelled").
   */
  stage<R>(stage: PlannedStage, request: StageRequest, args?: Record<string, unknown>, progress?: StageContext['progress']): Promise<R>;
}

/** How a job that ran to its end ended. */
export interface JobResult {
  /** The job's Message. */
  message: string;
  /** Changes committed in one transaction with the job's Complete (a deleted guest leaves with its delete job). */
  changes?: KeyChange[];
  /** The guest a `?wait` answers with; by default the job's guest once the end is durable. */
  guest?: Guest | (() => Guest | undefined);
}

/**
 * One kind of job (lifecycle actions, snapshot jobs, image transfers...):
 * what the engine needs to know of it. Registered with JobEngine.register.
 */
export interface JobExecutor {
  /** For logs: "lifecycle", "snapshot", "image". */
  readonly kind: string;
  /** Whether this executor runs jobs of `action`. */
  handles(action: string): boolean;
  /** The queue key of a job; by default its guest's id. */
  queueOf?(job: Job, args: Record<string, unknown>): string;
  /** Log fields naming what the job is about; by default `{guest: GuestID}`. */
  logFields?(job: Job, args: Record<string, unknown>): Record<string, unknown>;
  /** Runs the job. Resolves with how it ended; a throw ends it Error with the thrown message. */
  run(run: JobRun): Promise<JobResult>;
  /**
   * Changes that land with the job's Error, whatever ended it: a failed
   * stage, a cancel (queued or running), or an interruption found at the
   * next start (`ran` false for a job cancelled before it ran).
   */
  failed?(job: Job, args: Record<string, unknown>, reason: string, ran: boolean): KeyChange<Guest>[];
  /** A queued job found at start, before it is requeued (to claim what it will change). */
  requeued?(job: Job, args: Record<string, unknown>): void;
  /** Extension fields a running job of this kind shows (a move's `Migration`: phase and bytes). */
  progressOf?(job: Job): Record<string, unknown> | undefined;
  /** Why a running job can no longer be cancelled (409), if it cannot (a move switching over). */
  refuseCancel?(job: Job): string | undefined;
}

export const CANCELLED = 'cancelled';
export const INTERRUPTED = 'interrupted by agent restart';

interface Activity {
  cancel: AbortController;
  stage?: string;
}

export class JobEngine {
  private readonly scheduler: JobScheduler;
  private readonly executors: JobExecutor[] = [];
  private readonly shutdownController = stageShutdownController();
  private stopping = false;
  /** False until recover() ran: nothing that queues a job is accepted before the last run's jobs are requeued. */
  private recovered = false;
  /** Running jobs: how to cancel each, and the stage it is in. */
  private readonly active = new Map<string, Activity>();
  /** Queued jobs: the queue each waits on (positions, cancel). */
  private readonly queuedOn = new Map<string, string>();
  telemetry?: JobTelemetry;

  constructor(
    private readonly store: StateStore,
    private readonly registry: GuestRegistry,
    private readonly jobs: JobLog,
    private readonly log: AgentLogger,
    concurrency: number,
  ) {
    this.scheduler = new JobScheduler(concurrency, (_key, jobId) => this.execute(jobId));
  }

  /** Add a kind of job. Actions are matched in registration order; a kind registers before recover(). */
  register(executor: JobExecutor): void {
    if (this.recovered) throw new Error(`job kind "${executor.kind}" registered after the engine recovered its jobs`);
    this.executors.push(executor);
  }

  /** Fires at the shutdown deadline: stage calls outside jobs (metrics, uploads) listen to it too. */
  get shutdownSignal(): AbortSignal {
    return this.shutdownController.signal;
  }

  /**
   * Refuses new work while the agent stops (503), and anything that
   * queues or changes before the last run's jobs are requeued (503 too).
   */
  checkAccepting(changes = true): void {
    if (this.stopping) throw Errors.shuttingDown('the agent is shutting down and accepts no new actions; retry when it is back');
    if (changes && !this.recovered) throw Errors.notReady('the agent is starting and is requeueing the jobs of its last run; retry in a moment');
  }

  /**
   * A new job, durable and queued when this resolves; `changes` land in
   * the same transaction (a new guest and its create job).
   */
  async submit(guestId: string, action: string, args: Record<string, unknown>, changes: KeyChange<Guest>[] = []): Promise<Job> {
    this.checkAccepting();
    const { job, change } = this.jobs.createChange(guestId, action, args);
    await this.store.change(...changes, change);
    this.enqueue(job, args);
    return job;
  }

  /**
   * After a restart: jobs that were running were cut off mid-stage, so they
   * end as Error (their kind says what else that leaves, e.g. a guest in
   * `error`); queued jobs were acknowledged, so they run, in order.
   */
  async recover(): Promise<{ resumed: number; interrupted: number }> {
    const running = this.jobs.withStatus('Running');
    for (const { job, args } of running) await this.fail(job, args, INTERRUPTED, true);
    const queued = this.jobs.withStatus('Queued');
    for (const { job, args } of queued) {
      this.executorFor(job.Action)?.requeued?.(job, args);
      this.enqueue(job, args);
    }
    this.recovered = true;
    return { resumed: queued.length, interrupted: running.length };
  }

  /**
   * DELETE /jobs/{id}, for a job of any kind. A queued job leaves its queue
   * and ends Error "cancelled" now; a running one has its stage's
   * AbortSignal fired and ends (Error "cancelled") when that stage returns.
   */
  async cancel(jobId: string): Promise<Job> {
    const job = this.jobs.get(jobId);
    if (!job) throw Errors.jobNotFound(jobId);
    const queue = this.queuedOn.get(jobId);
    if (job.Status === 'Queued' && queue !== undefined && this.scheduler.remove(queue, jobId)) {
      this.queuedOn.delete(jobId);
      await this.fail(job, this.jobs.argsOf(jobId), CANCELLED, false);
      return this.jobs.get(jobId) ?? job;
    }
    const running = this.active.get(jobId);
    if (!running) throw Errors.conflict(`job ${jobId} is ${job.Status}; only a queued or running job can be cancelled`);
    const refused = this.executorFor(job.Action)?.refuseCancel?.(job);
    if (refused) throw Errors.conflict(`job ${jobId} cannot be cancelled now: ${refused}`);
    running.cancel.abort(new Error(CANCELLED));
    return this.withProgress(job);
  }

  /**
   * A job with the extension fields Go decoders ignore: `Stage` (the stage
   * a running job is in) and `QueuePosition` (1 = its queue runs it next).
   */
  withProgress(job: Job): Job & { Stage?: string; QueuePosition?: number } {
    if (job.Status === 'Running') {
      const stage = this.active.get(job.ID)?.stage;
      const extra = this.executorFor(job.Action)?.progressOf?.(job);
      const shown = extra ? { ...job, ...extra } : job;
      return stage ? { ...shown, Stage: stage } : shown;
    }
    if (job.Status === 'Queued') {
      const queue = this.queuedOn.get(job.ID);
      const position = queue === undefined ? undefined : this.scheduler.position(queue, job.ID);
      return position ? { ...job, QueuePosition: position } : job;
    }
    return job;
  }

  /** Whether the job is running now (its executor's run has not returned). */
  isRunning(jobId: string): boolean {
    return this.active.has(jobId);
  }

  /** Wait up to `timeoutMs` for a job to end; undefined if it is still going. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobEnd | undefined> {
    return this.jobs.waitFor(jobId, timeoutMs, (job) => this.registry.find(job.GuestID));
  }

  /**
   * Jobs queued and running, as the job log holds them (so /health and GET
   * /jobs agree at every moment, a restart's requeued jobs included), and
   * how many ended since start (see JobLog.endedSinceStart).
   */
  get stats(): { queued: number; running: number; complete: number; failed: number } {
    return { ...this.jobs.live, ...this.jobs.endedSinceStart };
  }

  /**
   * Stop taking jobs, give running ones `graceMs` to finish, then abort
   * their stages. Queued jobs stay queued in the store and run at the next
   * start; jobs cut off now are marked interrupted then.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    if (!(await this.scheduler.drain(graceMs))) {
      this.log.warn({ running: this.scheduler.runningCount }, 'jobs still running at the shutdown deadline; aborting their stages');
      this.shutdownController.abort(new Error('agent is shutting down'));
      // The aborted jobs record their end (Error) before the kernel closes the
      // store; a job that does not within this is marked interrupted at the next start.
      if (!(await this.scheduler.drain(ABORTED_JOBS_SETTLE_MS))) {
        this.log.warn({ running: this.scheduler.runningCount }, 'jobs still running after their stages were aborted; they are marked interrupted at the next start');
      }
    }
  }

  /** runStage, timed for GET /metrics: every stage call of the kernel passes here (sync stages and metrics reads too). */
  async timedStage<R>(stage: PlannedStage, request: StageRequest, run: StageRun, args?: Record<string, unknown>): Promise<R> {
    const started = performance.now();
    let failed = true;
    try {
      const result = await runStage<R>(stage, request, run, args);
      failed = false;
      return result;
    } finally {
      this.telemetry?.stage(stage.handle.name, (performance.now() - started) / 1000, failed);
    }
  }

  private executorFor(action: string): JobExecutor | undefined {
    return this.executors.find((e) => e.handles(action));
  }

  private enqueue(job: Job, args: Record<string, unknown>): void {
    const queue = this.executorFor(job.Action)?.queueOf?.(job, args) ?? job.GuestID;
    this.queuedOn.set(job.ID, queue);
    this.scheduler.enqueue(queue, job.ID);
  }

  private async execute(jobId: string): Promise<void> {
    this.queuedOn.delete(jobId);
    const job = this.jobs.get(jobId);
    if (!job || job.Status !== 'Queued') return;
    const args = this.jobs.argsOf(jobId);
    const executor = this.executorFor(job.Action);
    const fields = executor?.logFields?.(job, args) ?? { guest: job.GuestID };
    const log = asPluginLogger(this.log.child({ job: jobId, ...fields, action: job.Action }));
    // Registered before the first await, so a cancel arriving now finds it.
    const activity: Activity = { cancel: new AbortController() };
    this.active.set(jobId, activity);
    const cancel = activity.cancel.signal;
    const started = performance.now();
    let outcome: JobOutcome = 'error';
    try {
      await this.jobs.update(jobId, { Status: 'Running', StartedAt: new Date().toISOString() });
    } catch (error) {
      // Nothing ran: the job stays Queued in the store and runs at the next start.
      log.error({ error: messageOf(error) }, 'could not mark the job running; it stays queued until the agent restarts');
      this.active.delete(jobId);
      return;
    }
    const shutdown = this.shutdownController.signal;
    const run: JobRun = {
      job,
      args,
      log,
      cancel,
      shutdown,
      stage: <R>(stage: PlannedStage, request: StageRequest, stageArgs?: Record<string, unknown>, progress?: StageContext['progress']) => {
        if (cancel.aborted) return Promise.reject(new Error(CANCELLED));
        activity.stage = stage.handle.name;
        return this.timedStage<R>(stage, request, { log, jobId, shutdown, cancel, progress }, stageArgs);
      },
    };
    try {
      if (!executor) throw new Error(`action "${job.Action}" is not a job this agent runs`);
      const result = await executor.run(run);
      if (cancel.aborted) throw new Error(CANCELLED);
      await this.store.change(...(result.changes ?? []), this.jobs.updateChange(jobId, { Status: 'Complete', Message: result.message }, result.guest ?? (() => this.registry.find(job.GuestID))));
      outcome = 'complete';
      log.info({ status: 'Complete' }, 'job finished');
    } catch (error) {
      const reason = cancel.aborted ? CANCELLED : messageOf(error);
      if (cancel.aborted) outcome = 'cancelled';
      log.warn({ status: 'Error', error: reason }, 'job failed');
      await this.fail(job, args, reason, true).catch((e: unknown) => log.error({ error: messageOf(e) }, 'could not record the job failure'));
    } finally {
      this.active.delete(jobId);
      this.telemetry?.job(job.Action, outcome, (performance.now() - started) / 1000);
    }
  }

  /** End a job as Error, with what its kind says lands with that (a failed create leaves its guest in `error`). */
  private async fail(job: Job, args: Record<string, unknown>, reason: string, ran: boolean): Promise<void> {
    const changes = this.executorFor(job.Action)?.failed?.(job, args, reason, ran) ?? [];
    await this.store.change(...changes, this.jobs.updateChange(job.ID, { Status: 'Error', Message: reason }, () => this.registry.find(job.GuestID)));
  }
}
