/**
 * Moving guests between agents (docs/migration.md):
 *   POST   /guests/{id}/migrate             migrateGuest       a job on the guest's queue
 * and the agent-to-agent protocol, called by the other agent of a move:
 *   POST   /migrations                      prepareMigration   (target) check, then prepare an incoming copy
 *   POST   /migrations/check                checkMigration     (target) what it would refuse; nothing made
 *   GET    /migrations/{id}                 getMigration       (either side) the record's phase
 *   PUT    /migrations/{id}/disks/{device}  receiveMigrationDisk (target) a cold move's disk, streamed
 *   POST   /migrations/{id}/commit          commitMigration    (target) the guest becomes this host's
 *   POST   /migrations/{id}/abort           abortMigration     (target) drop an uncommitted copy; the final word
 *   DELETE /migrations/{id}                 forgetMigration    (target) the source is done with a committed move
 */
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { IncomingMigrations } from '../migration/incoming.js';
import type { MigrationRecords } from '../migration/migration-records.js';
import type { OutgoingMigrations } from '../migration/outgoing.js';
import { PrepareBodySchema } from '../migration/prepare-body.js';
import { actionParams } from './action-params.js';
import { answerGuestJob } from './guest-answer.js';
import type { GuestRouteDeps } from './guest-routes.js';
import { defineRoute } from './route.js';
import { err, JOB_FAULTS, waitQuery } from './openapi/common-docs.js';
import { GuestSchema } from './openapi/wire-schemas.js';
import { guardedBody } from './unread-body.js';

export interface MigrationRouteDeps extends GuestRouteDeps {
  outgoing: OutgoingMigrations;
  incoming: IncomingMigrations;
  records: MigrationRecords;
}

const MigrateBodySchema = z
  .object({
    url: z.string().optional().meta({ description: "The target agent's base URL, http://HOST:PORT", example: 'http://10.0.0.2:8080' }),
    token: z.string().optional().meta({ description: 'A bearer token of the target agent; omitted or "" when it has no auth' }),
    host: z.string().optional().meta({ description: 'A fleet host id instead of url (needs the fleet plugin)' }),
    bandwidth: z.number().int().positive().optional().meta({ description: 'MiB/s cap of the disk and memory copies each (live); absent: as fast as the link goes' }),
  })
  .meta({ id: 'MigrateRequest' });

const PhaseSchema = z.object({ id: z.string(), role: z.enum(['source', 'target']), guestId: z.string(), phase: z.string() }).meta({ id: 'MigrationPhase' });
const MIGRATION_ID = { id: "the move's id (the source's job id)" };

const migrateGuest = defineRoute({
  method: 'post',
  path: '/guests/:id/migrate',
  operationId: 'migrateGuest',
  tag: 'migration',
  summary: 'Move the guest to another agent (live when running, cold when off)',
  description: 'Queues a migrate job. GET /jobs/{id} shows `Migration` {phase, bytesSent, bytesLeft, bytesTotal} while it runs; DELETE /jobs/{id} undoes the move before its `switching` phase. See docs/migration.md.',
  request: { query: waitQuery, body: { schema: MigrateBodySchema, required: true } },
  responses: {
    200: { description: 'With ?wait: the guest runs (or is off) on the target, as the target holds it', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
    202: { description: 'Queued (or still moving at the ?wait deadline)', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
    400: err('No url (or host), a url that is not an agent base URL, a token the target agent refuses (its 401 is never passed on as this agent\'s), a bad wait'),
    404: err('No such guest'),
    409: err('The guest is not running, off or shutdown, or is already moving'),
    ...JOB_FAULTS,
  },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    const body = ctx.request.body;
    const parsed = MigrateBodySchema.safeParse(body ?? {});
    if (!parsed.success || (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body)))) {
      throw Errors.badRequest('the body is {"url": "http://HOST:PORT", "token": "..."} (or {"host": "<fleet host id>"})');
    }
    const { waitMs, args } = actionParams(ctx, deps.maxWaitSeconds);
    await answerGuestJob(ctx, deps, await deps.outgoing.request(ctx.params.id, parsed.data, args), waitMs);
  },
});

const prepareMigration = defineRoute({
  method: 'post',
  path: '/migrations',
  operationId: 'prepareMigration',
  tag: 'migration',
  summary: '(agent to agent) Check and prepare an incoming guest',
  description: 'Called by the source agent. Refuses what this host cannot hold before anything is made.',
  request: { body: { schema: PrepareBodySchema, required: true } },
  responses: {
    201: { description: 'Prepared: where to send the disks (NBD) and memory of a live move', schema: z.looseObject({ id: z.string(), phase: z.string() }) },
    400: err('A malformed request'),
    409: err('The guest id exists here, a move of it is in progress, or the source did not confirm the move'),
    422: err('This host cannot hold the guest: memory, CPUs, a bridge or a kernel file it lacks'),
    501: err("The guest's backend cannot move guests"),
    502: err('Preparing failed (nothing kept)'),
  },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    ctx.status = 201;
    ctx.body = await deps.incoming.prepare(ctx.request.body, ctx.req.socket.remoteAddress);
  },
});

const checkMigration = defineRoute({
  method: 'post',
  path: '/migrations/check',
  operationId: 'checkMigration',
  tag: 'migration',
  summary: '(agent to agent) Would this host take the guest? Nothing is made',
  request: { body: { schema: PrepareBodySchema, required: true } },
  responses: {
    204: { description: 'It would' },
    400: err('A malformed request'),
    409: err('The guest id exists here, or a move of it is in progress'),
    422: err('This host cannot hold the guest: memory, CPUs, a bridge or a kernel file it lacks'),
    501: err("The guest's backend cannot move guests"),
  },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    await deps.incoming.check(ctx.request.body);
    ctx.status = 204;
  },
});

const getMigration = defineRoute({
  method: 'get',
  path: '/migrations/:id',
  operationId: 'getMigration',
  tag: 'migration',
  summary: '(agent to agent) A move this agent takes part in',
  request: { params: MIGRATION_ID },
  responses: { 200: { description: 'Its phase', schema: PhaseSchema }, 404: err('No such move here') },
  handle: (deps: MigrationRouteDeps) => (ctx) => {
    const record = deps.records.get(ctx.params.id);
    if (!record) throw Errors.routeNotFound(`no migration ${ctx.params.id} on this host`);
    ctx.body = { id: record.id, role: record.role, guestId: record.guestId, phase: record.phase };
  },
});

const receiveDisk = defineRoute({
  method: 'put',
  path: '/migrations/:id/disks/:device',
  operationId: 'receiveMigrationDisk',
  tag: 'migration',
  summary: "(agent to agent) A cold move's disk, as a self-contained qcow2",
  request: { params: { ...MIGRATION_ID, device: 'the disk device (vda)' }, body: { required: true, contentType: '*/*', schema: z.string().meta({ format: 'binary' }) } },
  responses: { 204: { description: 'Stored and checked' }, 404: err('No such move or disk'), 409: err('The move is not waiting for disks'), 422: err('Not a self-contained qcow2') },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    await deps.incoming.writeDisk(ctx.params.id, ctx.params.device, guardedBody(ctx.req));
    ctx.status = 204;
  },
});

const commitMigration = defineRoute({
  method: 'post',
  path: '/migrations/:id/commit',
  operationId: 'commitMigration',
  tag: 'migration',
  summary: '(agent to agent) Take the guest over',
  request: { params: MIGRATION_ID },
  responses: { 200: { description: 'The guest is this host\'s', schema: z.object({ phase: z.literal('committed'), guest: GuestSchema }) }, 404: err('No such move'), 409: err('Not ready to switch over') },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    ctx.body = await deps.incoming.commit(ctx.params.id);
  },
});

const abortMigration = defineRoute({
  method: 'post',
  path: '/migrations/:id/abort',
  operationId: 'abortMigration',
  tag: 'migration',
  summary: '(agent to agent) Drop an uncommitted incoming copy; answers which it was',
  request: { params: MIGRATION_ID },
  responses: { 200: { description: '`aborted` (the source owns the guest) or `committed` (this host does)', schema: z.object({ phase: z.enum(['aborted', 'committed']) }) }, 404: err('No such move here (never prepared, or dropped)') },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    ctx.body = await deps.incoming.abort(ctx.params.id);
  },
});

const forgetMigration = defineRoute({
  method: 'delete',
  path: '/migrations/:id',
  operationId: 'forgetMigration',
  tag: 'migration',
  summary: '(agent to agent) The source is done with a committed move',
  request: { params: MIGRATION_ID },
  responses: { 204: { description: 'Forgotten' }, 404: err('No such move'), 409: err('Not committed') },
  handle: (deps: MigrationRouteDeps) => async (ctx) => {
    await deps.incoming.forget(ctx.params.id);
    ctx.status = 204;
  },
});

export const MIGRATION_ROUTES = [migrateGuest, checkMigration, prepareMigration, getMigration, receiveDisk, commitMigration, abortMigration, forgetMigration];
