/**
 * Guest routes of the mistify API. Routes only map a request to an action
 * name and shape the answer; the ActionRunner does the work.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { LifecycleAction, MetricsAction } from '../jobs/actions.js';
import type { ActionRunner, Accepted } from '../jobs/action-runner.js';
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { parseNewGuest } from '../guests/guest-factory.js';
import { createRetryDifference } from '../guests/create-retry.js';
import type { JobLog } from '../jobs/job-log.js';
import { parseMetadataPatch } from '../guests/metadata.js';
import { actionParams, checkActionBody } from './action-params.js';
import { cancelJob } from './cancel-job.js';
import { answerJob } from './job-answer.js';
import { sendJsonText } from './send-json.js';

export interface GuestRouteDeps {
  registry: GuestRegistry;
  runner: ActionRunner;
  jobs: JobLog;
  maxWaitSeconds: number;
  /** Validation issues listed in a 400 (limits.errorIssues). */
  errorIssues?: number;
}

const POWER_ACTIONS: LifecycleAction[] = ['shutdown', 'reboot', 'restart', 'poweroff', 'start', 'suspend', 'resume'];
const METRICS: Record<string, MetricsAction> = { cpu: 'cpuMetrics', nic: 'nicMetrics', disk: 'diskMetrics' };

export function guestRoutes(router: Router, deps: GuestRouteDeps): void {
  const { registry, runner, jobs, maxWaitSeconds } = deps;

  const guestOr404 = (id: string) => {
    const guest = registry.find(id);
    if (!guest) throw Errors.guestNotFound(id);
    return guest;
  };

  /** 202 + job id, or with ?wait the job's outcome. */
  const answer = (ctx: Context, accepted: Accepted, waitMs: number) =>
    answerJob(ctx, jobs, {
      jobId: accepted.job.ID,
      waitMs,
      wait: (jobId, ms) => runner.waitForJob(jobId, ms),
      pending: () => (waitMs > 0 ? (registry.find(accepted.guest.id) ?? accepted.guest) : accepted.guest),
      done: (end) => end.guest ?? registry.find(accepted.guest.id) ?? accepted.guest,
    });

  router.get('/guests', (ctx) => sendJsonText(ctx, 200, registry.listJson()));

  router.post('/guests', async (ctx) => {
    const { waitMs, args } = actionParams(ctx, maxWaitSeconds);
    // Create boots the guest, as mistify's does; ?start=false leaves it off.
    if (args.start !== undefined && !['true', 'false'].includes(args.start)) {
      throw Errors.badRequest(`start must be true (the default: the create boots the guest) or false (leave it off); got "${args.start}"`);
    }
    const { guest: parsed, clientId } = parseNewGuest(ctx.request.body, deps.errorIssues);
    const guest = { ...parsed, metadata: registry.clientMetadata(parsed.metadata) };
    const existing = clientId ? registry.find(guest.id) : undefined;
    if (existing) {
      const difference = createRetryDifference(guest, existing);
      if (difference) throw Errors.conflict(`guest ${guest.id} already exists and differs from this create: ${difference}; use a new id for another guest`);
      // An idempotent retry of a create that already happened.
      const createJob = jobs.forGuest(existing.id, Number.MAX_SAFE_INTEGER).find((j) => j.Action === 'create');
      if (createJob) ctx.set('X-Guest-Job-ID', createJob.ID);
      ctx.status = 200;
      ctx.body = existing;
      return;
    }
    await answer(ctx, await runner.create(guest, args), waitMs);
  });

  router.get('/guests/:id', (ctx) => {
    const text = registry.jsonOf(ctx.params.id);
    if (text === undefined) throw Errors.guestNotFound(ctx.params.id);
    sendJsonText(ctx, 200, text);
  });

  router.get('/guests/:id/metadata', (ctx) => {
    // A guest stored without metadata still has an (empty) map.
    ctx.body = guestOr404(ctx.params.id).metadata ?? {};
  });

  router.patch('/guests/:id/metadata', async (ctx) => {
    const patch = parseMetadataPatch(ctx.request.body);
    const updated = await registry.patchMetadata(ctx.params.id, patch);
    if (!updated) throw Errors.guestNotFound(ctx.params.id);
    ctx.body = updated.metadata;
  });

  for (const [type, action] of Object.entries(METRICS)) {
    router.get(`/guests/:id/metrics/${type}`, async (ctx) => {
      const { args } = actionParams(ctx, maxWaitSeconds);
      ctx.body = await runner.metrics(action, ctx.params.id, args);
    });
  }

  for (const action of POWER_ACTIONS) {
    router.post(`/guests/:id/${action}`, async (ctx) => {
      checkActionBody(ctx.request.body);
      const { waitMs, args } = actionParams(ctx, maxWaitSeconds);
      await answer(ctx, await runner.perform(action, ctx.params.id, args), waitMs);
    });
  }

  const remove = async (ctx: Context) => {
    checkActionBody(ctx.request.body);
    const { waitMs, args } = actionParams(ctx, maxWaitSeconds);
    await answer(ctx, await runner.perform('delete', ctx.params.id, args), waitMs);
  };
  router.delete('/guests/:id', remove);
  // mistify-agent's alias, for clients that cannot send DELETE.
  router.post('/guests/:id/delete', remove);

  router.get('/guests/:id/jobs', (ctx) => {
    guestOr404(ctx.params.id);
    ctx.body = jobs.forGuest(ctx.params.id, Number.MAX_SAFE_INTEGER).map((job) => runner.withProgress(job));
  });

  const guestJobOr404 = (guestId: string, jobId: string) => {
    guestOr404(guestId);
    const job = jobs.get(jobId);
    if (!job || job.GuestID !== guestId) throw Errors.jobNotFound(jobId);
    return job;
  };

  router.get('/guests/:id/jobs/:jobId', (ctx) => {
    ctx.body = runner.withProgress(guestJobOr404(ctx.params.id, ctx.params.jobId));
  });

  router.delete('/guests/:id/jobs/:jobId', (ctx) => cancelJob(ctx, { runner, jobs, maxWaitSeconds }, guestJobOr404(ctx.params.id, ctx.params.jobId).ID));
}
