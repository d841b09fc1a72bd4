/**
 * Snapshot routes of the mistify API, for a whole guest (every disk at one
 * instant) and for one of its disks:
 *   GET  …/snapshots                   listSnapshots     200 [Snapshot]
 *   POST …/snapshots                   createSnapshot    200 [Snapshot] + X-Guest-Job-ID
 *   GET  …/snapshots/{name}            getSnapshot       200 [Snapshot]; 404
 *   DELETE …/snapshots/{name}          deleteSnapshot    200 [Snapshot] + X-Guest-Job-ID; 404
 *   POST …/snapshots/{name}/rollback   rollbackSnapshot  200 [Snapshot] + X-Guest-Job-ID; 404; 409 unless off
 *   GET  …/snapshots/{name}/download   downloadSnapshot  200 the disk image, streamed
 *   POST …/snapshots/{name}/download/ticket  createSnapshotDownloadTicket  200 a single-use ticket for one download
 * where … is /guests/{id} or /guests/{id}/disks/{disk}.
 *
 * mistify-agent answered every one of these (but download) with 200 and
 * the SnapshotResponse's `snapshots` array, after running the action inside
 * the request; Go clients decode `[]rpc.Snapshot` and expect the snapshot to
 * exist once answered. So the bodies are arrays here too, and the jobs
 * (which run on the guest's queue, ordered with its lifecycle jobs) are
 * waited for by default, up to the agent's longest wait: without `?wait`
 * the answer is mistify's. `?wait=0` answers 202 at once, `?wait=N` waits N
 * seconds, as for every other action.
 */
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors, messageOf } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import type { ActionRunner } from '../jobs/action-runner.js';
import type { JobLog } from '../jobs/job-log.js';
import type { AcceptedSnapshotJob, SnapshotRunner, SnapshotTarget } from '../jobs/snapshot-runner.js';
import type { SnapshotRequest } from '../contract/wire-types.js';
import { describeAllowedStates } from '../contract/lifecycle.js';
import { actionParams } from './action-params.js';
import { answerJob } from './job-answer.js';
import { goBool, goString } from './go-values.js';
import { defineRoute, type ResponseDoc, type RouteDeclaration, type RouteHandler } from './route.js';
import { err, JOB_FAULTS, waitQuery } from './openapi/common-docs.js';
import { SnapshotSchema } from './openapi/wire-schemas.js';
import type { GuestTickets } from '../console/console-tickets.js';
import { downloadUse } from './ticket-check.js';

export interface SnapshotRouteDeps {
  snapshots: SnapshotRunner;
  runner: ActionRunner;
  jobs: JobLog;
  log: AgentLogger;
  maxWaitSeconds: number;
  /** The agent's single-use tickets (those of the console WebSockets too): a browser's download link carries one. */
  tickets: GuestTickets;
}

/** Go clients send every field, `""`, `false` or `null` when unset; the body itself may be `null`. */
export const snapshotRequestSchema = z.object({
  id: goString(255),
  dest: goString(255).meta({ description: 'The new snapshot\'s name (create); "" = snap-<unix seconds>' }),
  recursive: goBool.meta({ description: 'Ignored: guest routes are always all disks, disk routes one' }),
  destroyMoreRecent: goBool.meta({ description: 'Rollback: also delete the snapshots taken after this one (else they must not exist)' }),
});

function parseSnapshotRequest(body: unknown): SnapshotRequest {
  const parsed = snapshotRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw Errors.badRequest(`${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}${issue.path.length ? '' : '; a SnapshotRequest is a JSON object, null or nothing'}`);
  }
  return parsed.data;
}

/** ?wait as given, else the longest wait (mistify answered once the action was done). */
function jobParams(ctx: Context, maxWaitSeconds: number) {
  const params = actionParams(ctx, maxWaitSeconds);
  return ctx.query.wait === undefined ? { ...params, waitMs: maxWaitSeconds * 1000 } : params;
}

function answer(ctx: Context, deps: SnapshotRouteDeps, target: SnapshotTarget, accepted: AcceptedSnapshotJob, waitMs: number): Promise<void> {
  return answerJob(ctx, deps.jobs, {
    jobId: accepted.job.ID,
    waitMs,
    wait: (jobId, ms) => deps.runner.waitForJob(jobId, ms),
    pending: () => [accepted.snapshot],
    // A deleted snapshot cannot be read back: the answer is what it was.
    done: async (end) => [end.job.Action === 'deleteSnapshot' ? accepted.snapshot : await deps.snapshots.get(target, accepted.snapshot.id, {}).catch(() => accepted.snapshot)],
  });
}

/** The body of create, rollback and delete: optional; absent, `null`, `{}` or a SnapshotRequest (parseSnapshotRequest). */
const SNAPSHOT_BODY = {
  schema: snapshotRequestSchema.nullable().meta({
    id: 'SnapshotRequest',
    description: 'mistify rpc.SnapshotRequest; null, "" and false = unset; the body may be null or absent',
  }),
};

/** Answers of the snapshot jobs (create, delete, rollback). */
const snapshotJobResponses = (conflict: string): Record<number, ResponseDoc> => ({
  200: { description: 'The job completed (waited for unless ?wait says otherwise, as mistify answered once done): [the snapshot] (for a delete, as it was)', schema: z.array(SnapshotSchema), headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  202: { description: "With ?wait=0, queued on the guest's queue; or still running at the wait's deadline. Follow it with GET /jobs/{id}", schema: z.array(SnapshotSchema), headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  400: err('A bad snapshot name or body: the message names the field'),
  404: err('No such guest, disk or snapshot'),
  409: err(conflict),
  ...JOB_FAULTS,
});

const snapshotReadResponses: Record<number, ResponseDoc> = {
  404: err('No such guest, disk or snapshot'),
  409: err('The guest is being created or deleted'),
  501: err('The config maps no stage to this action'),
  502: err('A backend stage failed'),
  504: err('A backend stage timed out'),
};

/** A guest's snapshots (every disk at one instant), or those of one of its disks. */
interface Scope {
  path: string;
  idPrefix: string;
  of: string;
  target: (params: Record<string, string>) => SnapshotTarget;
}

const DownloadTicketSchema = z
  .object({
    ticket: z.string().meta({ description: 'Opaque; good for one GET of this snapshot\'s download route (this guest, this disk or guest-wide) within 30 s' }),
    expiresAt: z.string().meta({ description: 'RFC 3339', example: '2026-12-06T10:00:30.000Z' }),
    url: z.string().meta({ description: 'The download path with the ticket: a plain link a browser can follow', example: '/guests/ID/disks/vda/snapshots/NAME/download?ticket=...' }),
  })
  .meta({ id: 'DownloadTicket' });

const SCOPES: Scope[] = [
  { path: '/guests/:id/snapshots', idPrefix: 'Guest', of: 'the guest (all its disks)', target: (p) => ({ guestId: p.id }) },
  { path: '/guests/:id/disks/:disk/snapshots', idPrefix: 'Disk', of: 'one disk of the guest', target: (p) => ({ guestId: p.id, disk: p.disk }) },
];

/** Streams a snapshot's image to the client. */
const download =
  (scope: Scope) =>
  (deps: SnapshotRouteDeps): RouteHandler =>
  async (ctx) => {
    const { args } = actionParams(ctx, deps.maxWaitSeconds);
    const { stream, size, format = 'qcow2' } = await deps.snapshots.download(scope.target(ctx.params), ctx.params.name, args);
    // Piped here, not by Koa: a stream that fails after the headers went
    // out must cut the connection (the client sees a short body), never
    // end it as if complete; and a client that goes away stops the stream.
    ctx.respond = false;
    ctx.status = 200;
    ctx.set('Content-Type', format === 'tar' ? 'application/x-tar' : 'application/octet-stream');
    ctx.set('Content-Disposition', `attachment; filename="${ctx.params.name}.${format}"`);
    if (size !== undefined) {
      ctx.set('Content-Length', String(size));
      // A stream that ends short of its size is an error (the connection is cut), never a complete-looking body.
      ctx.res.strictContentLength = true;
    }
    ctx.req.socket.setTimeout(0);
    try {
      await pipeline(stream, ctx.res);
    } catch (error) {
      deps.log.warn({ reqId: ctx.state.reqId, url: ctx.url, error: messageOf(error) }, 'snapshot download cut off');
    }
  };

/**
 * A single-use ticket for one download of the snapshot, for browsers (a
 * plain link cannot carry the token; ticket-check.ts). The snapshot is read
 * checked as the download checks it (SnapshotRunner.checkDownload), so what
 * would refuse the download now (no such guest, disk or snapshot, a job
 * changing it, a guest-wide download of several disks, no download stage)
 * is answered here, to the page, as JSON.
 */
const downloadTicket =
  (scope: Scope) =>
  (deps: SnapshotRouteDeps): RouteHandler =>
  async (ctx) => {
    const { args } = actionParams(ctx, deps.maxWaitSeconds);
    const target = scope.target(ctx.params);
    const { snapshot } = await deps.snapshots.checkDownload(target, ctx.params.name, args);
    const { ticket, expiresAt } = deps.tickets.issue(target.guestId, downloadUse(snapshot.id, target.disk));
    const disk = target.disk === undefined ? '' : `/disks/${encodeURIComponent(target.disk)}`;
    ctx.status = 200;
    ctx.body = {
      ticket,
      expiresAt: new Date(expiresAt).toISOString(),
      url: `/guests/${encodeURIComponent(target.guestId)}${disk}/snapshots/${encodeURIComponent(snapshot.id)}/download?ticket=${ticket}`,
    };
  };

/** The same seven operations for a guest and for one disk. */
function scopeRoutes(scope: Scope): RouteDeclaration<SnapshotRouteDeps>[] {
  const { path, idPrefix, of } = scope;
  const tag = 'snapshots';
  return [
    defineRoute({
      method: 'get',
      path,
      operationId: `list${idPrefix}Snapshots`,
      tag,
      summary: `List the snapshots of ${of}`,
      responses: { 200: { description: 'The snapshots', schema: z.array(SnapshotSchema) }, ...snapshotReadResponses },
      handle: (deps: SnapshotRouteDeps) => async (ctx) => {
        const { args } = actionParams(ctx, deps.maxWaitSeconds);
        ctx.body = await deps.snapshots.list(scope.target(ctx.params), args);
      },
    }),
    defineRoute({
      method: 'post',
      path,
      operationId: `create${idPrefix}Snapshot`,
      tag,
      summary: `Take a snapshot of ${of} as a job`,
      description: 'Named `dest` (or snap-<unix seconds>). Running and off guests both work; docs/snapshots.md says what each backend captures. The body is optional (absent, null, {} or a SnapshotRequest).',
      request: { query: waitQuery, body: SNAPSHOT_BODY },
      responses: snapshotJobResponses(`The name is taken, a job is changing it, or the guest is not ${describeAllowedStates('createSnapshot')}`),
      handle: (deps: SnapshotRouteDeps) => async (ctx) => {
        const { waitMs, args } = jobParams(ctx, deps.maxWaitSeconds);
        const target = scope.target(ctx.params);
        await answer(ctx, deps, target, await deps.snapshots.create(target, parseSnapshotRequest(ctx.request.body), args), waitMs);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${path}/:name`,
      operationId: `get${idPrefix}Snapshot`,
      tag,
      summary: `Get a snapshot of ${of}`,
      responses: { 200: { description: 'The snapshot, as a one-element array (mistify answered the SnapshotResponse array)', schema: z.array(SnapshotSchema) }, 400: err('Not a snapshot name'), ...snapshotReadResponses },
      handle: (deps: SnapshotRouteDeps) => async (ctx) => {
        const { args } = actionParams(ctx, deps.maxWaitSeconds);
        ctx.body = [await deps.snapshots.get(scope.target(ctx.params), ctx.params.name, args)];
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${path}/:name`,
      operationId: `delete${idPrefix}Snapshot`,
      tag,
      summary: `Delete a snapshot of ${of} as a job`,
      request: { query: waitQuery, body: SNAPSHOT_BODY },
      responses: snapshotJobResponses(`A job is changing the snapshot, or the guest is not ${describeAllowedStates('deleteSnapshot')}`),
      handle: (deps: SnapshotRouteDeps) => async (ctx) => {
        parseSnapshotRequest(ctx.request.body);
        const { waitMs, args } = jobParams(ctx, deps.maxWaitSeconds);
        const target = scope.target(ctx.params);
        await answer(ctx, deps, target, await deps.snapshots.remove(target, ctx.params.name, args), waitMs);
      },
    }),
    defineRoute({
      method: 'post',
      path: `${path}/:name/rollback`,
      operationId: `rollback${idPrefix}Snapshot`,
      tag,
      summary: `Roll ${of} back to a snapshot as a job`,
      description: `The guest must be ${describeAllowedStates('rollbackSnapshot')}. With destroyMoreRecent the later snapshots are deleted; without, a later one is a 409 from the backend. The body is optional (absent, null, {} or a SnapshotRequest).`,
      request: { query: waitQuery, body: SNAPSHOT_BODY },
      responses: snapshotJobResponses(`The guest is not ${describeAllowedStates('rollbackSnapshot')}, or a job is changing the snapshot`),
      handle: (deps: SnapshotRouteDeps) => async (ctx) => {
        const body = parseSnapshotRequest(ctx.request.body);
        const { waitMs, args } = jobParams(ctx, deps.maxWaitSeconds);
        const target = scope.target(ctx.params);
        await answer(ctx, deps, target, await deps.snapshots.rollback(target, ctx.params.name, body, args), waitMs);
      },
    }),
    defineRoute({
      method: 'get',
      path: `${path}/:name/download`,
      operationId: `download${idPrefix}Snapshot`,
      tag,
      summary: `Download a snapshot of ${of} as a self-contained disk image (a container's layer as a tar), streamed`,
      description:
        'Content-Length when the backend knows the size, else chunked. A transfer that fails midway is cut off (a short body), never ended as if complete. A container guest\'s snapshot is its root layer as a tar (application/x-tar, docs/containers.md). ' +
        'Auth: the bearer token, or `?ticket=` from POST …/snapshots/{name}/download/ticket (a browser\'s plain link), good for this one download. Example: curl -o snap.qcow2 host:8080/guests/ID/snapshots/NAME/download',
      request: { query: z.object({ ticket: z.string().optional().meta({ description: 'A download ticket of this snapshot, instead of the Authorization header' }) }) },
      responses: {
        200: { description: 'The image bytes (application/x-tar for a container guest)', contentType: 'application/octet-stream' },
        400: err('Not a snapshot name'),
        ...snapshotReadResponses,
        409: err('A job is changing the snapshot; or, guest-wide, the guest has several disks (download each from its disk route)'),
      },
      handle: download(scope),
    }),
    defineRoute({
      method: 'post',
      path: `${path}/:name/download/ticket`,
      operationId: `create${idPrefix}SnapshotDownloadTicket`,
      tag,
      summary: `A single-use ticket for one download of a snapshot of ${of}, without a header`,
      description:
        "For browsers, which cannot put the token on a plain link: `?ticket=` on GET of this snapshot's download route (this guest, this scope), once, within 30 s, so the browser streams the image to disk. " +
        "Checked as the download is: what would refuse the download now (a job changing the snapshot, several disks guest-wide) is answered here. A ticket opens nothing else (any other route asks for the token); tickets live in the agent's memory only (docs/snapshots.md#downloads-from-a-browser).",
      responses: {
        200: { description: 'The ticket', schema: DownloadTicketSchema },
        400: err('Not a snapshot name'),
        ...snapshotReadResponses,
        409: err('A job is changing the snapshot; or, guest-wide, the guest has several disks (ask for a ticket on each disk route)'),
      },
      handle: downloadTicket(scope),
    }),
  ];
}

export const SNAPSHOT_ROUTES = SCOPES.flatMap(scopeRoutes);
