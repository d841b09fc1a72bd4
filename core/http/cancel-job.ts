/**
 * DELETE /jobs/{id} (and /guests/{id}/jobs/{jobID}): 200 with the job when
 * it has ended (a queued job is cancelled at once), 202 while a running
 * job's stage is winding down; ?wait=S holds the answer until it ends.
 * Jobs of every kind (lifecycle, snapshot, image) are cancelled by the one job engine.
 */
import type { Context } from 'koa';
import type { ActionRunner } from '../jobs/action-runner.js';
import { isFinished, type JobLog } from '../jobs/job-log.js';
import type { Job } from '../contract/wire-types.js';
import { actionParams, checkActionBody } from './action-params.js';

export interface CancelDeps {
  runner: ActionRunner;
  jobs: JobLog;
  maxWaitSeconds: number;
}

export async function cancelJob(ctx: Context, deps: CancelDeps, jobId: string): Promise<void> {
  checkActionBody(ctx.request.body);
  const { waitMs } = actionParams(ctx, deps.maxWaitSeconds);
  let job: Job = await deps.runner.cancel(jobId);
  if (!isFinished(job.Status) && waitMs > 0) job = (await deps.jobs.waitForEnd(jobId, waitMs))?.job ?? deps.jobs.get(jobId) ?? job;
  ctx.status = isFinished(job.Status) ? 200 : 202;
  ctx.body = deps.runner.withProgress(job);
}
