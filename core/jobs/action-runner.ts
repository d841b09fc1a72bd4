/**
 * core/jobs: action names and plans, the pipeline engine, per-guest queues,
 * image jobs and the job log.
 * May import: contract, config, plugins, guests, state, events, errors, logger.
 *
 * The pipeline engine. An action's sync stages run inside the request and
 * may refuse it; its async stages run later as one job on the guest's
 * queue. Every guest a stage returns is persisted before the next stage
 * runs, so a crash mid-job loses at most the stage that was running.
 */
import { METRICS_ACTIONS, VM_GUEST_TYPES, GUEST_TYPE_PREFIXES, actionNameFor, prefixedGuestType, type LifecycleAction, type MetricsAction } from './actions.js';
import type { ActionPlans, LifecyclePlan, PlanSet } from './action-plan.js';
import { Errors, messageOf } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { JobLog, type JobEnd } from './job-log.js';
import { JobScheduler } from './job-scheduler.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import { runStage, stageShutdownController, type PlannedStage, type StageRun } from '../plugins/stage-runner.js';
import type { StateStore } from '../state/state-store.js';
import { CREATE_FAILURE_KEY } from '../guests/metadata.js';
import type { Guest, GuestMetricsResponse, GuestResponse, Job } from '../contract/wire-types.js';

export interface RunnerTelemetry {
  stage(stage: string, seconds: number, failed: boolean): void;
  job(action: string, outcome: 'complete' | 'error' | 'cancelled', seconds: number): void;
}

/** What a job of an added kind gets to run its stages with (see ActionRunner.addGuestJobKind). */
export interface GuestJobRun {
  log: ReturnType<typeof asPluginLogger>;
  jobId: string;
  shutdown: AbortSignal;
  cancel: AbortSignal;
  /** Runs a stage, timed for GET /metrics and shown as the job's Stage. */
  stage<R>(stage: PlannedStage, request: Parameters<typeof runStage>[1], args?: Record<string, unknown>): Promise<R>;
}

export type GuestJobExecutor = (job: Job, args: Record<string, unknown>, run: GuestJobRun) => Promise<string>;

export interface Accepted {
  guest: Guest;
  job: Job;
}

export class ActionRunner {
  private readonly scheduler: JobScheduler;
  private readonly shutdownController = stageShutdownController();
  private stopping = false;
  /** False until recover() ran: no action is accepted before the old jobs are requeued. */
  private recovered = false;
  /** Ids whose create is between its checks and its first write. */
  private readonly creating = new Set<string>();
  /** Stage and job durations for GET /metrics; set by the kernel. */
  telemetry?: RunnerTelemetry;
  /** Running jobs: how to cancel each, and the stage it is in. */
  private readonly active = new Map<string, { cancel: AbortController; stage?: string }>();
  /** Job kinds other than lifecycle actions that share the guests' queues. */
  private readonly guestJobKinds: { handles: (action: string) => boolean; execute: GuestJobExecutor }[] = [];

  constructor(
    private readonly store: StateStore,
    private readonly registry: GuestRegistry,
    private readonly jobs: JobLog,
    private readonly plans: ActionPlans,
    private readonly log: AgentLogger,
    concurrency: number,
  ) {
    this.scheduler = new JobScheduler(concurrency, (guestId, jobId) => this.execute(guestId, jobId));
  }

  /**
   * After a restart: jobs that were running were cut off mid-stage, so they
   * end as Error; queued jobs were acknowledged, so they run, in order. A
   * guest whose create was cut off is left in `error` with the reason, so
   * an operator can start or delete it.
   */
  async recover(): Promise<{ resumed: number; interrupted: number }> {
    const running = this.jobs.withStatus('Running');
    for (const { job } of running) {
      await this.fail(job, INTERRUPTED);
    }
    // Host jobs (GuestID "", e.g. image fetches) are the ImageRunner's.
    const queued = this.jobs.withStatus('Queued').filter(({ job }) => job.GuestID !== '');
    for (const { job } of queued) this.scheduler.enqueue(job.GuestID, job.ID);
    this.recovered = true;
    return { resumed: queued.length, interrupted: running.length };
  }

  /** Jobs waiting and running now, and how many ended since start (see JobLog.endedSinceStart). */
  get stats(): { queued: number; running: number; complete: number; failed: number } {
    return { queued: this.scheduler.queuedCount, running: this.scheduler.runningCount, ...this.jobs.endedSinceStart };
  }

  /** The stage a metrics action calls for virtual machines, or undefined when unconfigured. */
  metricsStage(action: MetricsAction): string | undefined {
    return this.plans.metrics.get(action)?.stage.handle.name;
  }

  /** Run `action` on an existing guest: sync stages now, the rest as a job. */
  async perform(action: LifecycleAction, guestId: string, args: Record<string, unknown>): Promise<Accepted> {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const plan = this.lifecyclePlan(action, guest);
    if (isForcedShutdown(action, args) && !this.plansFor(guest).lifecycle.has('poweroff')) {
      throw Errors.actionNotConfigured('shutdown?force=true powers off when the shutdown fails, but this config maps no stages to "poweroff"; add actions.poweroff');
    }
    const checked = await this.runSync(plan, guest, args, true);
    const job = await this.jobs.create(guestId, action, args);
    this.scheduler.enqueue(guestId, job.ID);
    return { guest: checked, job };
  }

  /** Register a new guest and queue its create job. */
  async create(guest: Guest, args: Record<string, unknown>): Promise<Accepted> {
    const plan = this.lifecyclePlan('create', guest);
    // Two concurrent retries with the same client-chosen id must not both create.
    if (this.creating.has(guest.id) || this.registry.find(guest.id)) {
      throw Errors.conflict(`guest ${guest.id} already exists or is being created; GET /guests/${guest.id} shows it`);
    }
    this.creating.add(guest.id);
    try {
      const checked = await this.runSync(plan, guest, args, false);
      // The guest and its create job land together or not at all.
      const { job, change } = this.jobs.createChange(checked.id, 'create', args);
      await this.store.change(
        this.registry.change(checked.id, (current) => {
          if (current) throw Errors.conflict(`guest ${checked.id} already exists; GET /guests/${checked.id} shows it`);
          return checked;
        }),
        change,
      );
      this.scheduler.enqueue(checked.id, job.ID);
      return { guest: checked, job };
    } finally {
      this.creating.delete(guest.id);
    }
  }

  /** Metrics are read directly, never queued behind the guest's jobs. */
  async metrics(action: MetricsAction, guestId: string, args: Record<string, unknown>): Promise<unknown> {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const name = actionNameFor(prefixedGuestType(guest.type), action);
    const plan = this.plansFor(guest).metrics.get(action);
    if (!plan) throw Errors.actionNotConfigured(`this agent's config maps no stage to "${name}" (guest type "${guest.type}"); add actions.${name}.stages to the config`);
    const type = METRICS_ACTIONS[action];
    const response = await this.timedStage<GuestMetricsResponse | undefined>(
      plan.stage,
      { guest, type, args: { ...plan.stage.args, ...args } },
      { log: asPluginLogger(this.log), shutdown: this.shutdownController.signal },
    );
    const metrics = response?.[type];
    if (metrics === undefined || metrics === null) {
      throw Errors.stageFailed(`stage ${plan.stage.handle.name} returned no ${type} metrics for guest ${guestId}`);
    }
    return metrics;
  }

  /**
   * DELETE /jobs/{id}. A queued job leaves its queue and ends Error
   * "cancelled" now; a running one has its stage's AbortSignal fired and
   * ends (Error "cancelled") when that stage returns.
   */
  async cancel(jobId: string): Promise<Job> {
    const job = this.jobs.get(jobId);
    if (!job) throw Errors.jobNotFound(jobId);
    if (job.Status === 'Queued' && this.scheduler.remove(job.GuestID, jobId)) {
      return this.jobs.update(jobId, { Status: 'Error', Message: CANCELLED }, this.registry.find(job.GuestID));
    }
    const running = this.active.get(jobId);
    if (!running) throw Errors.conflict(`job ${jobId} is ${job.Status}; only a queued or running job can be cancelled`);
    running.cancel.abort(new Error(CANCELLED));
    return this.withProgress(job);
  }

  /**
   * A job with the extension fields Go decoders ignore: `Stage` (the stage
   * a running job is in) and `QueuePosition` (1 = its guest runs it next).
   */
  withProgress(job: Job): Job & { Stage?: string; QueuePosition?: number } {
    if (job.Status === 'Running') {
      const stage = this.active.get(job.ID)?.stage;
      return stage ? { ...job, Stage: stage } : job;
    }
    if (job.Status === 'Queued') {
      const position = this.scheduler.position(job.GuestID, job.ID);
      return position ? { ...job, QueuePosition: position } : job;
    }
    return job;
  }

  /** Wait up to `timeoutMs` for a job to end; undefined if it is still going. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobEnd | undefined> {
    return this.jobs.waitFor(jobId, timeoutMs, (job) => this.registry.find(job.GuestID));
  }

  /**
   * Another kind of job on the guests' queues (snapshot actions): jobs whose
   * action `handles` accepts run through `execute`, after the guest's earlier
   * jobs and before its later ones, with cancel, shutdown, recovery and
   * telemetry as for lifecycle jobs. `execute` answers the job's Message.
   */
  addGuestJobKind(handles: (action: string) => boolean, execute: GuestJobExecutor): void {
    this.guestJobKinds.push({ handles, execute });
  }

  /** Queue a job of an added kind on the guest's queue (after its sync checks passed). */
  async enqueue(guestId: string, action: string, args: Record<string, unknown>): Promise<Job> {
    this.checkAccepting();
    const job = await this.jobs.create(guestId, action, args);
    this.scheduler.enqueue(guestId, job.ID);
    return job;
  }

  /** Refuses new work while the agent stops, or before the last run's jobs are requeued. */
  checkAccepting(): void {
    if (this.stopping) throw Errors.shuttingDown('the agent is shutting down and accepts no new actions; retry when it is back');
    if (!this.recovered) throw Errors.notReady('the agent is starting and is requeueing the jobs of its last run; retry in a moment');
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
    }
  }

  /** runStage, timed for the metrics. */
  private async timedStage<R>(stage: PlannedStage, request: Parameters<typeof runStage>[1], run: StageRun, args?: Record<string, unknown>): Promise<R> {
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

  private lifecyclePlan(action: LifecycleAction, guest: Guest): LifecyclePlan {
    this.checkAccepting();
    const plan = this.plansFor(guest).lifecycle.get(action);
    if (!plan) {
      const name = actionNameFor(prefixedGuestType(guest.type), action);
      throw Errors.actionNotConfigured(`this agent's config maps no stages to "${name}" (guest type "${guest.type}"); add actions.${name} to the config`);
    }
    return plan;
  }

  /** As in mistify: a guest's type picks its plans ("container" runs containerStart...). */
  private plansFor(guest: Guest): PlanSet {
    const prefixed = prefixedGuestType(guest.type);
    if (prefixed) return this.plans.byType[prefixed];
    if (!VM_GUEST_TYPES.includes(guest.type)) {
      const known = [...VM_GUEST_TYPES.map((t) => `"${t}"`), ...Object.keys(GUEST_TYPE_PREFIXES).map((t) => `"${t}"`)];
      throw Errors.badRequest(`type: "${guest.type}" is not a guest type this agent runs; use ${known.join(', ')} ("", "vm" and "kvm" are virtual machines)`);
    }
    return this.plans;
  }

  private async runSync(plan: LifecyclePlan, guest: Guest, args: Record<string, unknown>, registered: boolean): Promise<Guest> {
    let current = guest;
    for (const stage of plan.sync) {
      const response = await this.timedStage<GuestResponse | void>(
        stage,
        { guest: current, action: plan.action, args: { ...stage.args, ...args } },
        { log: asPluginLogger(this.log) },
      );
      if (response?.guest) {
        current = registered ? await this.registry.applyStageResult(current, response.guest) : { ...response.guest, id: guest.id };
      }
    }
    return current;
  }

  private async execute(guestId: string, jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job || job.Status !== 'Queued') return;
    const log = asPluginLogger(this.log.child({ job: jobId, guest: guestId, action: job.Action }));
    const other = this.guestJobKinds.find((kind) => kind.handles(job.Action));
    if (other) return this.executeOther(job, other.execute, log);
    const known = this.registry.find(guestId);
    const plan = known ? this.plansFor(known).lifecycle.get(job.Action as LifecycleAction) : undefined;
    const args = this.jobs.argsOf(jobId);
    const leftOff = job.Action === 'create' && args.start === 'false' && plan?.asyncLeftOff !== undefined;
    if (job.Action === 'create' && args.start === 'false' && plan && !leftOff) {
      // Nothing to leave out: the pipeline has no trailing start stages (docs/api.md). Said, not silent.
      log.info({ stages: plan.async.map((s) => s.handle.name) }, 'start=false changes nothing: this config\'s create pipeline does not end with the start action\'s stages, so it runs as configured');
    }
    const stages = leftOff ? plan!.asyncLeftOff! : (plan?.async ?? []);
    // Registered before the first await, so a cancel arriving now finds it.
    const activity: { cancel: AbortController; stage?: string } = { cancel: new AbortController() };
    this.active.set(jobId, activity);
    const cancelled = activity.cancel.signal;
    const started = performance.now();
    let outcome: 'complete' | 'error' | 'cancelled' = 'error';
    try {
      await this.jobs.update(jobId, { Status: 'Running', StartedAt: new Date().toISOString() });
    } catch (error) {
      // Nothing ran: the job stays Queued in the store and runs at the next start.
      log.error({ error: messageOf(error) }, 'could not mark the job running; it stays queued until the agent restarts');
      this.active.delete(jobId);
      return;
    }
    let message = '';
    try {
      if (!plan) throw new Error(`action "${job.Action}" is no longer configured`);
      let guest = this.registry.find(guestId);
      if (!guest) throw new Error(`guest ${guestId} no longer exists`);
      for (const stage of stages) {
        if (cancelled.aborted) break;
        activity.stage = stage.handle.name;
        // The newest guest, not the one the previous stage returned: a
        // metadata PATCH may have landed in between.
        const sent: Guest = this.registry.find(guestId) ?? guest;
        let response: GuestResponse | void;
        try {
          response = await this.timedStage<GuestResponse | void>(
            stage,
            { guest: sent, action: job.Action, args: { ...stage.args, ...args } },
            { log, jobId, shutdown: this.shutdownController.signal, cancel: cancelled },
          );
        } catch (error) {
          if (cancelled.aborted || this.shutdownController.signal.aborted || !isForcedShutdown(job.Action, args)) throw error;
          message = await this.forcePowerOff(guestId, args, log, activity, messageOf(error));
          break;
        }
        if (response?.guest) guest = await this.registry.applyStageResult(sent, response.guest);
        if (response?.message) message = response.message;
      }
      if (cancelled.aborted) throw new Error(CANCELLED);
      const last = this.registry.find(guestId) ?? guest;
      // Complete means the guest got where the client asked: a create that boots ends running.
      if (job.Action === 'create' && plan.asyncLeftOff && !leftOff && last.state !== 'running') {
        throw new Error(`the guest was created but is ${last.state || 'in no state'} after its boot, not running`);
      }
      // The guest's last change and the job's end land together.
      const guestChange =
        job.Action === 'delete'
          ? this.registry.change(guestId, () => undefined)
          : this.registry.change(guestId, (current) => (current?.metadata?.[CREATE_FAILURE_KEY] === undefined ? current : { ...current, metadata: without(current.metadata, CREATE_FAILURE_KEY) }));
      const endGuest = job.Action === 'delete' ? last : () => this.registry.find(guestId);
      await this.store.change(guestChange, this.jobs.updateChange(jobId, { Status: 'Complete', Message: message }, endGuest));
      outcome = 'complete';
      log.info({ status: 'Complete' }, 'job finished');
    } catch (error) {
      const reason = cancelled.aborted ? CANCELLED : messageOf(error);
      if (cancelled.aborted) outcome = 'cancelled';
      log.warn({ status: 'Error', error: reason }, 'job failed');
      try {
        await this.fail(job, reason);
      } catch (storageError) {
        log.error({ error: messageOf(storageError) }, 'could not record the job failure');
      }
    } finally {
      this.active.delete(jobId);
      this.telemetry?.job(job.Action, outcome, (performance.now() - started) / 1000);
    }
  }

  /** A job of an added kind: the same bookkeeping as a lifecycle job around its executor. */
  private async executeOther(job: Job, execute: GuestJobExecutor, log: ReturnType<typeof asPluginLogger>): Promise<void> {
    const activity: { cancel: AbortController; stage?: string } = { cancel: new AbortController() };
    this.active.set(job.ID, activity);
    const started = performance.now();
    let outcome: 'complete' | 'error' | 'cancelled' = 'error';
    try {
      await this.jobs.update(job.ID, { Status: 'Running', StartedAt: new Date().toISOString() });
    } catch (error) {
      log.error({ error: messageOf(error) }, 'could not mark the job running; it stays queued until the agent restarts');
      this.active.delete(job.ID);
      return;
    }
    const cancel = activity.cancel.signal;
    const run: GuestJobRun = {
      log,
      jobId: job.ID,
      shutdown: this.shutdownController.signal,
      cancel,
      stage: <R>(stage: PlannedStage, request: Parameters<typeof runStage>[1], args?: Record<string, unknown>) => {
        if (cancel.aborted) throw new Error(CANCELLED);
        activity.stage = stage.handle.name;
        return this.timedStage<R>(stage, request, { log, jobId: job.ID, shutdown: this.shutdownController.signal, cancel }, args);
      },
    };
    try {
      const message = await execute(job, this.jobs.argsOf(job.ID), run);
      if (cancel.aborted) throw new Error(CANCELLED);
      await this.jobs.update(job.ID, { Status: 'Complete', Message: message }, this.registry.find(job.GuestID));
      outcome = 'complete';
      log.info({ status: 'Complete' }, 'job finished');
    } catch (error) {
      const reason = cancel.aborted ? CANCELLED : messageOf(error);
      if (cancel.aborted) outcome = 'cancelled';
      log.warn({ status: 'Error', error: reason }, 'job failed');
      await this.fail(job, reason).catch((e: unknown) => log.error({ error: messageOf(e) }, 'could not record the job failure'));
    } finally {
      this.active.delete(job.ID);
      this.telemetry?.job(job.Action, outcome, (performance.now() - started) / 1000);
    }
  }

  /**
   * End a job as Error. A failed or interrupted create leaves its guest in
   * `error` with the reason in metadata, in the same commit as the job.
   */
  private async fail(job: Job, reason: string): Promise<void> {
    if (job.Action !== 'create') {
      await this.jobs.update(job.ID, { Status: 'Error', Message: reason }, this.registry.find(job.GuestID));
      return;
    }
    await this.store.change(
      this.registry.change(job.GuestID, (current) => current && { ...current, state: 'error', metadata: { ...current.metadata, [CREATE_FAILURE_KEY]: reason } }),
      this.jobs.updateChange(job.ID, { Status: 'Error', Message: reason }, () => this.registry.find(job.GuestID)),
    );
  }

  /**
   * shutdown?force=true: the guest did not shut down (its stage failed or
   * timed out), so the poweroff action's job stages run in the same job.
   */
  private async forcePowerOff(
    guestId: string,
    args: Record<string, unknown>,
    log: ReturnType<typeof asPluginLogger>,
    activity: { cancel: AbortController; stage?: string },
    why: string,
  ): Promise<string> {
    const known = this.registry.find(guestId);
    const plan = known ? this.plansFor(known).lifecycle.get('poweroff') : undefined;
    if (!plan) throw new Error(`${why}; force=true needs a poweroff action in the config`);
    log.warn({ reason: why }, 'shutdown failed; forcing power off');
    for (const stage of plan.async) {
      activity.stage = stage.handle.name;
      const sent = this.registry.find(guestId);
      if (!sent) throw new Error(`guest ${guestId} no longer exists`);
      const response = await this.timedStage<GuestResponse | void>(
        stage,
        { guest: sent, action: 'poweroff', args: { ...stage.args, ...args } },
        { log, jobId: undefined, shutdown: this.shutdownController.signal, cancel: activity.cancel.signal },
      );
      if (response?.guest) await this.registry.applyStageResult(sent, response.guest);
    }
    return `forced: powered off after the shutdown did not complete (${why})`;
  }
}

const INTERRUPTED = 'interrupted by agent restart';

function without(metadata: Record<string, string>, key: string): Record<string, string> {
  const { [key]: _removed, ...rest } = metadata;
  return rest;
}

const CANCELLED = 'cancelled';

/** `?force=true` on shutdown (the value is checked at the HTTP edge). */
function isForcedShutdown(action: string, args: Record<string, unknown>): boolean {
  return action === 'shutdown' && (args.force === 'true' || args.force === '1' || args.force === '');
}
