/**
 * Guest routes of the mistify API: list, create, get, and a guest's
 * metadata. Routes only map a request to an action name and shape the
 * answer; the ActionRunner does the work. Actions, jobs and metrics of a
 * guest are declared in guest-action-routes.ts, guest-job-routes.ts and
 * guest-metrics-routes.ts.
 */
import { z } from 'zod';
import type { ActionRunner } from '../jobs/action-runner.js';
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import { guestSchema, parseNewGuest } from '../guests/guest-factory.js';
import { createRetryDifference } from '../guests/create-retry.js';
import type { JobLog } from '../jobs/job-log.js';
import { parseMetadataPatch } from '../guests/metadata.js';
import { actionParams } from './action-params.js';
import { answerGuestJob, guestOr404 } from './guest-answer.js';
import { defineRoute } from './route.js';
import { sendJsonText } from './send-json.js';
import { err, JOB_FAULTS, waitQuery } from './openapi/common-docs.js';
import { GuestSchema, MetadataPatchSchema, MetadataSchema } from './openapi/wire-schemas.js';

export interface GuestRouteDeps {
  registry: GuestRegistry;
  runner: ActionRunner;
  jobs: JobLog;
  maxWaitSeconds: number;
  /** Validation issues listed in a 400 (limits.errorIssues). */
  errorIssues?: number;
}

const listGuests = defineRoute({
  method: 'get',
  path: '/guests',
  operationId: 'listGuests',
  tag: 'guests',
  summary: 'List the guests',
  responses: { 200: { description: 'Every guest', schema: z.array(GuestSchema) } },
  handle: ({ registry }: GuestRouteDeps) => (ctx) => sendJsonText(ctx, 200, registry.listJson()),
});

const createGuest = defineRoute({
  method: 'post',
  path: '/guests',
  operationId: 'createGuest',
  tag: 'guests',
  summary: 'Create a guest',
  description:
    'Queues the create job, which boots the guest (the create pipeline ends with start; the job completes once it runs). ' +
    'A client-chosen UUID `id` makes retries idempotent: a retry answers 200 with the existing guest.',
  request: {
    query: waitQuery.extend({
      start: z.enum(['true', 'false']).optional().meta({ description: 'false: leave the new guest off (the create pipeline skips its trailing start stages; on a config whose create has none, it changes nothing: docs/api.md)', example: 'false' }),
    }),
    body: {
      // Absent or `null` (json.Marshal of a nil *Guest) is a create with every default.
      schema: guestSchema.nullable().meta({
        id: 'NewGuest',
        description:
          'What a client may set. Go zero values mean "not given": "" strings, 0 numbers, null lists and maps; a null or absent body is a guest with every default. ' +
          'Fields the agent owns (state, vnc, NIC devices, disk devices and sources) are ignored; unknown fields too.',
      }),
    },
  },
  responses: {
    200: { description: 'An idempotent retry (the guest exists), or with ?wait the create completed', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
    202: { description: 'Created, state creating; the create job is queued (or still running at the ?wait deadline)', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
    400: err('An invalid body: the message names the field, `issues` lists every one'),
    404: err('Not used'),
    409: err('A guest with this id is being created'),
    413: err('The body is larger than bodyLimit'),
    415: err('The body is explicitly typed as something other than JSON'),
    ...JOB_FAULTS,
  },
  handle: (deps: GuestRouteDeps) => async (ctx) => {
    const { registry, runner, jobs, maxWaitSeconds } = deps;
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
    await answerGuestJob(ctx, deps, await runner.create(guest, args), waitMs);
  },
});

const getGuest = defineRoute({
  method: 'get',
  path: '/guests/:id',
  operationId: 'getGuest',
  tag: 'guests',
  summary: 'Get a guest',
  responses: { 200: { description: 'The guest', schema: GuestSchema }, 404: err('No such guest') },
  handle: ({ registry }: GuestRouteDeps) => (ctx) => {
    const text = registry.jsonOf(ctx.params.id);
    if (text === undefined) throw Errors.guestNotFound(ctx.params.id);
    sendJsonText(ctx, 200, text);
  },
});

const getGuestMetadata = defineRoute({
  method: 'get',
  path: '/guests/:id/metadata',
  operationId: 'getGuestMetadata',
  tag: 'metadata',
  summary: "Get a guest's metadata",
  responses: { 200: { description: 'The metadata', schema: MetadataSchema }, 404: err('No such guest') },
  handle: (deps: GuestRouteDeps) => (ctx) => {
    // A guest stored without metadata still has an (empty) map.
    ctx.body = guestOr404(deps, ctx.params.id).metadata ?? {};
  },
});

const patchGuestMetadata = defineRoute({
  method: 'patch',
  path: '/guests/:id/metadata',
  operationId: 'patchGuestMetadata',
  tag: 'metadata',
  summary: "Merge into a guest's metadata",
  request: { body: { schema: MetadataPatchSchema } },
  responses: { 200: { description: 'The merged metadata', schema: MetadataSchema }, 400: err('Not a metadata patch (the message names the key)'), 404: err('No such guest') },
  handle: ({ registry }: GuestRouteDeps) => async (ctx) => {
    const patch = parseMetadataPatch(ctx.request.body);
    const updated = await registry.patchMetadata(ctx.params.id, patch);
    if (!updated) throw Errors.guestNotFound(ctx.params.id);
    ctx.body = updated.metadata;
  },
});

export const GUEST_ROUTES = [listGuests, createGuest, getGuest, getGuestMetadata, patchGuestMetadata];
