/**
 * DELETE /jobs/{id} (and /guests/{id}/jobs/{jobID}): 200 with the job when
 * it has ended (a queued job is cancelled at once), 202 while a running
 * job's stage is winding down; ?wait=S holds the answer until it ends.
 */
import type { Context } from 'koa';
import type { ActionRunner } from '../jobs/action-runner.js';
import { isFinished } from '../jobs/job-log.js';
import { actionParams } from './action-params.js';

export async function cancelJob(ctx: Context, runner: ActionRunner, maxWaitSeconds: number, jobId: string): Promise<void> {
  const { waitMs } = actionParams(ctx, maxWaitSeconds);
  let job = await runner.cancel(jobId);
  if (!isFinished(job.Status) && waitMs > 0) job = (await runner.waitForJob(jobId, waitMs))?.job ?? job;
  ctx.status = isFinished(job.Status) ? 200 : 202;
  ctx.body = runner.withProgress(job);
}
