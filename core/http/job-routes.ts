/** The job log: the newest jobs, one job, and cancelling one (guest and host jobs alike). */
import { z } from 'zod';
import { Errors } from '../errors.js';
import { limitParam } from './action-params.js';
import { cancelJob } from './cancel-job.js';
import type { HostRouteDeps } from './host-routes.js';
import { defineRoute } from './route.js';
import { ACTION_BODY, cancelResponses, err, waitQuery } from './openapi/common-docs.js';
import { JobSchema } from './openapi/wire-schemas.js';

const listJobs = defineRoute({
  method: 'get',
  path: '/jobs',
  operationId: 'listJobs',
  tag: 'jobs',
  summary: 'The newest jobs first',
  request: { query: z.object({ limit: z.string().optional().meta({ description: 'How many (1 to 100000; default 100)', example: '20' }) }) },
  responses: { 200: { description: 'The jobs', schema: z.array(JobSchema) }, 400: err('A bad limit') },
  handle: (deps: HostRouteDeps) => (ctx) => {
    ctx.body = deps.jobs.list(limitParam(ctx, 100, 100000)).map((job) => deps.runner.withProgress(job));
  },
});

const getJob = defineRoute({
  method: 'get',
  path: '/jobs/:id',
  operationId: 'getJob',
  tag: 'jobs',
  summary: 'Get a job',
  responses: { 200: { description: 'The job', schema: JobSchema }, 404: err('Unknown or pruned') },
  handle: (deps: HostRouteDeps) => (ctx) => {
    const job = deps.jobs.get(ctx.params.id);
    if (!job) throw Errors.jobNotFound(ctx.params.id);
    ctx.body = deps.runner.withProgress(job);
  },
});

const cancelHostJob = defineRoute({
  method: 'delete',
  path: '/jobs/:id',
  operationId: 'cancelJob',
  tag: 'jobs',
  summary: 'Cancel a queued or running job',
  request: { query: waitQuery, body: ACTION_BODY },
  responses: cancelResponses('Unknown or pruned'),
  handle: (deps: HostRouteDeps) => (ctx) => cancelJob(ctx, deps, ctx.params.id),
});

export const JOB_ROUTES = [listJobs, getJob, cancelHostJob];
