/**
 * The request side of lifecycle actions and metrics. An action's sync
 * stages run inside the request, after the kernel's lifecycle check, and
 * may refuse it (a 4xx, nothing queued); its async stages run later as one
 * job on the guest's queue, run by the job engine through LifecycleJobs.
 * Metrics are read directly, never queued behind the guest's jobs.
 */
import { METRICS_ACTIONS, actionNameFor, prefixedGuestType, type LifecycleAction, type MetricsAction } from './actions.js';
import type { ActionPlans, LifecyclePlan } from './action-plan.js';
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { checkLifecycleState, plansFor } from './guest-plans.js';
import type { JobEngine } from './job-engine.js';
import type { JobEnd } from './job-log.js';
import { isForcedShutdown } from './lifecycle-jobs.js';
import { asPluginLogger, type AgentLogger } from '../logger.js';
import type { Guest, GuestMetricsResponse, GuestResponse, Job } from '../contract/wire-types.js';

export interface Accepted {
  guest: Guest;
  job: Job;
}

export class ActionRunner {
  /** Ids whose create is between its checks and its first write. */
  private readonly creating = new Set<string>();

  constructor(
    private readonly registry: GuestRegistry,
    private readonly plans: ActionPlans,
    private readonly engine: JobEngine,
    private readonly log: AgentLogger,
  ) {}

  /** Jobs waiting and running now, and how many ended since start (the engine's, every kind). */
  get stats(): { queued: number; running: number; complete: number; failed: number } {
    return this.engine.stats;
  }

  /**
   * The stage a metrics action calls: virtual machines' first, then each
   * prefixed guest type's (a container backend's) where it differs, joined
   * by ","; undefined when no guest type has one. A host running only
   * containers still has its guests' metrics swept onto /metrics.
   */
  metricsStage(action: MetricsAction): string | undefined {
    const names = new Set<string>();
    for (const plans of [this.plans, ...Object.values(this.plans.byType)]) {
      const name = plans.metrics.get(action)?.stage.handle.name;
      if (name !== undefined) names.add(name);
    }
    return names.size > 0 ? [...names].join(',') : undefined;
  }

  /** Run `action` on an existing guest: the lifecycle check and sync stages now, the rest as a job. */
  async perform(action: LifecycleAction, guestId: string, args: Record<string, unknown>): Promise<Accepted> {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    const plan = this.lifecyclePlan(action, guest);
    if (isForcedShutdown(action, args) && !plansFor(this.plans, guest).lifecycle.has('poweroff')) {
      throw Errors.actionNotConfigured('shutdown?force=true powers off when the shutdown fails, but this config maps no stages to "poweroff"; add actions.poweroff');
    }
    checkLifecycleState(plan, guest);
    const checked = await this.runSync(plan, guest, args, true);
    const job = await this.engine.submit(guestId, action, args);
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
      const registered = this.registry.change(checked.id, (current) => {
        if (current) throw Errors.conflict(`guest ${checked.id} already exists; GET /guests/${checked.id} shows it`);
        return checked;
      });
      const job = await this.engine.submit(checked.id, 'create', args, [registered]);
      return { guest: checked, job };
    } finally {
      this.creating.delete(guest.id);
    }
  }

  /** Metrics are read directly, never queued behind the guest's jobs. */
  async metrics(action: MetricsAction, guestId: string, args: Record<string, unknown>): Promise<unknown> {
    const guest = this.registry.find(guestId);
    if (!guest) throw Errors.guestNotFound(guestId);
    return this.metricsOf(action, guest, args);
  }

  /**
   * Metrics of a guest the caller already holds (the Prometheus sweep has
   * every guest from one listing): no look-up by id, so no parse of the
   * guest's JSON and no churn of the registry's parsed-guest cache.
   */
  async metricsOf(action: MetricsAction, guest: Guest, args: Record<string, unknown>): Promise<unknown> {
    const guestId = guest.id;
    const name = actionNameFor(prefixedGuestType(guest.type), action);
    const plan = plansFor(this.plans, guest).metrics.get(action);
    if (!plan) throw Errors.actionNotConfigured(`this agent's config maps no stage to "${name}" (guest type "${guest.type}"); add actions.${name}.stages to the config`);
    const type = METRICS_ACTIONS[action];
    const response = await this.engine.timedStage<GuestMetricsResponse | undefined>(
      plan.stage,
      { guest, type, args: { ...plan.stage.args, ...args } },
      { log: asPluginLogger(this.log), shutdown: this.engine.shutdownSignal },
    );
    const metrics = response?.[type];
    if (metrics === undefined || metrics === null) {
      throw Errors.stageFailed(`stage ${plan.stage.handle.name} returned no ${type} metrics for guest ${guestId}`);
    }
    return metrics;
  }

  /** DELETE /jobs/{id}, for a job of any kind (the engine's). */
  cancel(jobId: string): Promise<Job> {
    return this.engine.cancel(jobId);
  }

  /** A job with its `Stage` or `QueuePosition` (the engine's, for a job of any kind). */
  withProgress(job: Job): Job & { Stage?: string; QueuePosition?: number } {
    return this.engine.withProgress(job);
  }

  /** Wait up to `timeoutMs` for a job to end; undefined if it is still going. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobEnd | undefined> {
    return this.engine.waitForJob(jobId, timeoutMs);
  }

  private lifecyclePlan(action: LifecycleAction, guest: Guest): LifecyclePlan {
    this.engine.checkAccepting();
    const plan = plansFor(this.plans, guest).lifecycle.get(action);
    if (!plan) {
      const name = actionNameFor(prefixedGuestType(guest.type), action);
      throw Errors.actionNotConfigured(`this agent's config maps no stages to "${name}" (guest type "${guest.type}"); add actions.${name} to the config`);
    }
    return plan;
  }

  private async runSync(plan: LifecyclePlan, guest: Guest, args: Record<string, unknown>, registered: boolean): Promise<Guest> {
    let current = guest;
    for (const stage of plan.sync) {
      const response = await this.engine.timedStage<GuestResponse | void>(
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
}
