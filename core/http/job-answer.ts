/**
 * The answer of every request that queued a job (guest actions, image
 * fetches and deletes, snapshot actions): 202 with X-Guest-Job-ID at once,
 * or with ?wait the job's outcome: 200 and what it made when it completed,
 * HK_ERR_JOB_FAILED when it failed, 202 with X-Guest-Job-Status when the
 * wait ran out first.
 */
import type { Context } from 'koa';
import { Errors } from '../errors.js';
import type { JobEnd, JobLog } from '../jobs/job-log.js';

export interface QueuedJob {
  jobId: string;
  waitMs: number;
  /** Waits for the job's end (the runner's waitForJob, which knows what the job changed). */
  wait(jobId: string, timeoutMs: number): Promise<JobEnd | undefined>;
  /** The body while the job is queued or running. */
  pending(): unknown;
  /** The body once it completed. */
  done(end: JobEnd): unknown;
}

export async function answerJob(ctx: Context, jobs: JobLog, queued: QueuedJob): Promise<void> {
  ctx.set('X-Guest-Job-ID', queued.jobId);
  if (queued.waitMs <= 0) {
    ctx.status = 202;
    ctx.body = queued.pending();
    return;
  }
  const end = await queued.wait(queued.jobId, queued.waitMs);
  ctx.set('X-Guest-Job-Status', end?.job.Status ?? jobs.get(queued.jobId)?.Status ?? 'Queued');
  if (!end) {
    ctx.status = 202;
    ctx.body = queued.pending();
    return;
  }
  if (end.job.Status === 'Error') {
    throw Errors.jobFailed(`${end.job.Action} job ${end.job.ID} failed: ${end.job.Message}`, { details: { job: end.job } });
  }
  const body = await queued.done(end);
  ctx.status = 200;
  ctx.body = body;
}
