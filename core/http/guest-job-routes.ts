/** A guest's jobs: its part of the job log, one of its jobs, and cancelling one. */
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { Job } from '../contract/wire-types.js';
import { cancelJob } from './cancel-job.js';
import { guestOr404 } from './guest-answer.js';
import type { GuestRouteDeps } from './guest-routes.js';
import { defineRoute } from './route.js';
import { ACTION_BODY, cancelResponses, err, waitQuery } from './openapi/common-docs.js';
import { JobSchema } from './openapi/wire-schemas.js';

const JOB_ID = { jobId: 'job id' };

/** The job, when it is one of this guest's; else 404. */
function guestJobOr404(deps: GuestRouteDeps, guestId: string, jobId: string): Job {
  guestOr404(deps, guestId);
  const job = deps.jobs.get(jobId);
  if (!job || job.GuestID !== guestId) throw Errors.jobNotFound(jobId);
  return job;
}

const listGuestJobs = defineRoute({
  method: 'get',
  path: '/guests/:id/jobs',
  operationId: 'listGuestJobs',
  tag: 'jobs',
  summary: "A guest's jobs, newest first",
  responses: { 200: { description: 'The jobs', schema: z.array(JobSchema) }, 404: err('No such guest') },
  handle: (deps: GuestRouteDeps) => (ctx) => {
    guestOr404(deps, ctx.params.id);
    ctx.body = deps.jobs.forGuest(ctx.params.id, Number.MAX_SAFE_INTEGER).map((job) => deps.runner.withProgress(job));
  },
});

const getGuestJob = defineRoute({
  method: 'get',
  path: '/guests/:id/jobs/:jobId',
  operationId: 'getGuestJob',
  tag: 'jobs',
  summary: 'One job of a guest',
  request: { params: JOB_ID },
  responses: { 200: { description: 'The job', schema: JobSchema }, 404: err('No such guest, or no such job of this guest') },
  handle: (deps: GuestRouteDeps) => (ctx) => {
    ctx.body = deps.runner.withProgress(guestJobOr404(deps, ctx.params.id, ctx.params.jobId));
  },
});

const cancelGuestJob = defineRoute({
  method: 'delete',
  path: '/guests/:id/jobs/:jobId',
  operationId: 'cancelGuestJob',
  tag: 'jobs',
  summary: 'Cancel one job of a guest',
  request: { params: JOB_ID, query: waitQuery, body: ACTION_BODY },
  responses: cancelResponses('No such guest, or no such job of this guest'),
  handle: (deps: GuestRouteDeps) => (ctx) => cancelJob(ctx, deps, guestJobOr404(deps, ctx.params.id, ctx.params.jobId).ID),
});

export const GUEST_JOB_ROUTES = [listGuestJobs, getGuestJob, cancelGuestJob];
