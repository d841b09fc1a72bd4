/**
 * Documentation pieces several route declarations share: the error answer,
 * `?wait`, the faults of every queued job, the optional action body, the
 * answers of a job cancel.
 */
import { z } from 'zod';
import type { BodyDoc, ResponseDoc } from '../route.js';
import { ErrorSchema, JobSchema } from './wire-schemas.js';

export const err = (description: string): ResponseDoc => ({ description, schema: ErrorSchema });

export const waitQuery = z.object({
  wait: z.string().optional().meta({
    description: 'Seconds to hold the answer until the job ends (at most jobs.maxWaitSeconds; empty = the maximum). 200 when it completed, 500 HK_ERR_JOB_FAILED when it failed, 202 at the deadline',
    example: '30',
  }),
});

/** The failures every queued action (guest actions and snapshot jobs alike) may answer with. */
export const JOB_FAULTS: Record<number, ResponseDoc> = {
  500: { description: 'With ?wait: the job failed (HK_ERR_JOB_FAILED, the job in `job`); or a fault in the agent', schema: ErrorSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  501: err('The config maps no stages to this action'),
  502: err('A backend stage failed'),
  503: err('The agent is stopping and accepts no new actions'),
  504: err('A backend stage timed out'),
};

/**
 * The body of an action POST or a DELETE, as checkActionBody (../action-params.ts)
 * takes it: absent, `null` (Go's json.Marshal(nil), which mistify clients
 * send on every action) or any JSON object, whose fields are ignored.
 */
export const ACTION_BODY: BodyDoc = {
  schema: z.looseObject({}).nullable().meta({
    id: 'ActionBody',
    description: 'Ignored: absent, null (what Go clients send) or any object. Action options go in the query',
  }),
  description: 'Optional and ignored: no body, `null` or an object (a body labelled text/plain, form-encoded or unlabelled is read as JSON too); anything else is a 400',
};

export const cancelResponses = (notFound: string): Record<number, ResponseDoc> => ({
  200: { description: 'The job has ended: a queued job is cancelled at once (Status Error, Message "cancelled"); with ?wait, a running one ended', schema: JobSchema },
  202: { description: "A running job: its stage's AbortSignal fired; the job ends (Error, cancelled) when the stage returns", schema: JobSchema },
  400: err('A bad wait parameter, or a body that is not null or an object'),
  404: err(notFound),
  409: err('The job already ended'),
});
