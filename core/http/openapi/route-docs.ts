/**
 * The documentation of every route, grouped like the route files. Adding a
 * route means adding its RouteDoc here (the route-coverage test names any
 * route that has none). See docs/openapi.md.
 */
import { z } from 'zod';
import { guestSchema } from '../../guests/guest-factory.js';
import { imageRequestSchema } from '../image-routes.js';
import { snapshotRequestSchema } from '../snapshot-routes.js';
import type { ResponseDoc, RouteDoc } from './api-registry.js';
import { VNC_ROUTE_DOCS } from './vnc-route-docs.js';
import { describeAllowedStates, type LifecycleAction } from '../../contract/lifecycle.js';
import {
  CpuMetricsSchema,
  DiskMetricsSchema,
  ErrorSchema,
  GuestSchema,
  HealthSchema,
  ImageSchema,
  SnapshotSchema,
  JobSchema,
  MetadataPatchSchema,
  MetadataSchema,
  NicMetricsSchema,
  UnavailableNicMetricsSchema,
} from './wire-schemas.js';

const err = (description: string): ResponseDoc => ({ description, schema: ErrorSchema });

/** A 409's text from the kernel's lifecycle table, the states it enforces. */
const unless = (action: LifecycleAction): string => `Unless the guest is ${describeAllowedStates(action)} (the lifecycle table; a config's guard.requireState args.states replace them)`;

const waitQuery = z.object({
  wait: z.string().optional().meta({
    description: 'Seconds to hold the answer until the job ends (at most jobs.maxWaitSeconds; empty = the maximum). 200 when it completed, 500 HK_ERR_JOB_FAILED when it failed, 202 at the deadline',
    example: '30',
  }),
});

/** The failures every queued action (guest actions and snapshot jobs alike) may answer with. */
const JOB_FAULTS: Record<number, ResponseDoc> = {
  500: { description: 'With ?wait: the job failed (HK_ERR_JOB_FAILED, the job in `job`); or a fault in the agent', schema: ErrorSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  501: err('The config maps no stages to this action'),
  502: err('A backend stage failed'),
  503: err('The agent is stopping and accepts no new actions'),
  504: err('A backend stage timed out'),
};

/** Answers of every queued action (start, delete...). */
const actionResponses = (conflict: string): Record<number, ResponseDoc> => ({
  200: { description: 'With ?wait: the job completed; the guest as the job left it', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  202: { description: 'Queued (or, with ?wait, still running at the deadline: see X-Guest-Job-Status)', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  400: err('A bad wait or timeout parameter'),
  404: err('No such guest'),
  409: err(conflict),
  ...JOB_FAULTS,
});

const POWER: { action: string; summary: string; conflict: string; query?: z.ZodObject }[] = [
  { action: 'start', summary: 'Start the guest', conflict: unless('start') },
  {
    action: 'shutdown',
    summary: 'Shut the guest down (ACPI power button)',
    conflict: unless('shutdown'),
    query: waitQuery.extend({
      timeout: z.string().optional().meta({ description: 'Seconds the guest OS gets to power off (1 to 86400)', example: '60' }),
      force: z.string().optional().meta({ description: 'true: when the guest has not shut down by then, power it off in the same job (its Message starts "forced:")', example: 'true' }),
    }),
  },
  { action: 'reboot', summary: 'Reboot the guest (soft, by the guest OS)', conflict: unless('reboot') },
  { action: 'restart', summary: 'Reset the guest (hard)', conflict: unless('restart') },
  { action: 'poweroff', summary: 'Power the guest off (pull the plug)', conflict: unless('poweroff') },
  { action: 'suspend', summary: "Pause the guest's vCPUs", conflict: unless('suspend') },
  { action: 'resume', summary: "Resume a suspended guest's vCPUs", conflict: unless('resume') },
];

const cancelResponses = (notFound: string): Record<number, ResponseDoc> => ({
  200: { description: 'The job has ended: a queued job is cancelled at once (Status Error, Message "cancelled"); with ?wait, a running one ended', schema: JobSchema },
  202: { description: "A running job: its stage's AbortSignal fired; the job ends (Error, cancelled) when the stage returns", schema: JobSchema },
  400: err('A bad wait parameter'),
  404: err(notFound),
  409: err('The job already ended'),
});

const METRICS: { type: string; summary: string; schema: z.ZodType }[] = [
  { type: 'cpu', summary: 'CPU time per vCPU', schema: z.array(CpuMetricsSchema) },
  { type: 'nic', summary: 'Counters per NIC (by NIC name)', schema: z.record(z.string(), z.union([NicMetricsSchema, UnavailableNicMetricsSchema])) },
  { type: 'disk', summary: 'Counters per disk (by device)', schema: z.record(z.string(), DiskMetricsSchema) },
];

const deleteDoc = (method: 'delete' | 'post', path: string, operationId: string, summary: string): RouteDoc => ({
  method,
  path,
  operationId,
  tag: 'guests',
  summary,
  description: 'Queues the delete job; the guest leaves the registry when it succeeds (a failed one leaves it, the error in the job).',
  query: waitQuery,
  responses: actionResponses(unless('delete')),
});

export const GUEST_ROUTE_DOCS: RouteDoc[] = [
  { method: 'get', path: '/guests', operationId: 'listGuests', tag: 'guests', summary: 'List the guests', responses: { 200: { description: 'Every guest', schema: z.array(GuestSchema) } } },
  {
    method: 'post',
    path: '/guests',
    operationId: 'createGuest',
    tag: 'guests',
    summary: 'Create a guest',
    description:
      'Queues the create job, which boots the guest (the create pipeline ends with start; the job completes once it runs). ' +
      'A client-chosen UUID `id` makes retries idempotent: a retry answers 200 with the existing guest.',
    query: waitQuery.extend({
      start: z.enum(['true', 'false']).optional().meta({ description: 'false: leave the new guest off (the create pipeline skips its trailing start stages; on a config whose create has none, it changes nothing: docs/api.md)', example: 'false' }),
    }),
    body: guestSchema.meta({
      id: 'NewGuest',
      description:
        'What a client may set. Go zero values mean "not given": "" strings, 0 numbers, null lists and maps. ' +
        'Fields the agent owns (state, vnc, NIC devices, disk devices and sources) are ignored; unknown fields too.',
    }),
    responses: {
      ...actionResponses('A guest with this id is being created'),
      200: { description: 'An idempotent retry (the guest exists), or with ?wait the create completed', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
      202: { description: 'Created, state creating; the create job is queued (or still running at the ?wait deadline)', schema: GuestSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
      400: err('An invalid body: the message names the field, `issues` lists every one'),
      404: err('Not used'),
      413: err('The body is larger than bodyLimit'),
      415: err('The body is explicitly typed as something other than JSON'),
    },
  },
  { method: 'get', path: '/guests/:id', operationId: 'getGuest', tag: 'guests', summary: 'Get a guest', responses: { 200: { description: 'The guest', schema: GuestSchema }, 404: err('No such guest') } },
  {
    method: 'get',
    path: '/guests/:id/metadata',
    operationId: 'getGuestMetadata',
    tag: 'metadata',
    summary: "Get a guest's metadata",
    responses: { 200: { description: 'The metadata', schema: MetadataSchema }, 404: err('No such guest') },
  },
  {
    method: 'patch',
    path: '/guests/:id/metadata',
    operationId: 'patchGuestMetadata',
    tag: 'metadata',
    summary: "Merge into a guest's metadata",
    body: MetadataPatchSchema,
    responses: { 200: { description: 'The merged metadata', schema: MetadataSchema }, 400: err('Not a metadata patch (the message names the key)'), 404: err('No such guest') },
  },
  ...METRICS.map(
    (m): RouteDoc => ({
      method: 'get',
      path: `/guests/:id/metrics/${m.type}`,
      operationId: `get${m.type[0].toUpperCase()}${m.type.slice(1)}Metrics`,
      tag: 'metrics',
      summary: m.summary,
      responses: {
        200: { description: 'The metrics', schema: m.schema },
        404: err('No such guest'),
        501: err('The config maps no stage to these metrics'),
        502: err('The backend failed'),
        504: err('The backend timed out'),
      },
    }),
  ),
  ...POWER.map(
    (p): RouteDoc => ({
      method: 'post',
      path: `/guests/:id/${p.action}`,
      operationId: `${p.action}Guest`,
      tag: 'actions',
      summary: p.summary,
      description: "No body (or null, or {}): Go clients send null. Other query parameters are passed to the action's stages as string args.",
      query: p.query ?? waitQuery,
      responses: actionResponses(p.conflict),
    }),
  ),
  deleteDoc('delete', '/guests/:id', 'deleteGuest', 'Delete a guest'),
  deleteDoc('post', '/guests/:id/delete', 'deleteGuestAlias', "Delete a guest (mistify's alias of DELETE)"),
  {
    method: 'get',
    path: '/guests/:id/jobs',
    operationId: 'listGuestJobs',
    tag: 'jobs',
    summary: "A guest's jobs, newest first",
    responses: { 200: { description: 'The jobs', schema: z.array(JobSchema) }, 404: err('No such guest') },
  },
  {
    method: 'get',
    path: '/guests/:id/jobs/:jobId',
    operationId: 'getGuestJob',
    tag: 'jobs',
    summary: 'One job of a guest',
    responses: { 200: { description: 'The job', schema: JobSchema }, 404: err('No such guest, or no such job of this guest') },
  },
  {
    method: 'delete',
    path: '/guests/:id/jobs/:jobId',
    operationId: 'cancelGuestJob',
    tag: 'jobs',
    summary: 'Cancel one job of a guest',
    query: waitQuery,
    responses: cancelResponses('No such guest, or no such job of this guest'),
  },
];

export const HOST_ROUTE_DOCS: RouteDoc[] = [
  { method: 'get', path: '/metadata', operationId: 'getHostMetadata', tag: 'metadata', summary: 'Get the host metadata', responses: { 200: { description: 'The metadata', schema: MetadataSchema } } },
  {
    method: 'patch',
    path: '/metadata',
    operationId: 'patchHostMetadata',
    tag: 'metadata',
    summary: 'Merge into the host metadata',
    body: MetadataPatchSchema,
    responses: { 200: { description: 'The merged metadata', schema: MetadataSchema }, 400: err('Not a metadata patch (the message names the key)') },
  },
  {
    method: 'get',
    path: '/jobs',
    operationId: 'listJobs',
    tag: 'jobs',
    summary: 'The newest jobs first',
    query: z.object({ limit: z.string().optional().meta({ description: 'How many (1 to 100000; default 100)', example: '20' }) }),
    responses: { 200: { description: 'The jobs', schema: z.array(JobSchema) }, 400: err('A bad limit') },
  },
  { method: 'get', path: '/jobs/:id', operationId: 'getJob', tag: 'jobs', summary: 'Get a job', responses: { 200: { description: 'The job', schema: JobSchema }, 404: err('Unknown or pruned') } },
  { method: 'delete', path: '/jobs/:id', operationId: 'cancelJob', tag: 'jobs', summary: 'Cancel a queued or running job', query: waitQuery, responses: cancelResponses('Unknown or pruned') },
  {
    method: 'get',
    path: '/health',
    operationId: 'getHealth',
    tag: 'host',
    summary: "Liveness and each plugin's health",
    description:
      'Open to all and never 401, so load balancers can probe it: without a valid token (when auth.tokens are configured) it answers only `status`, `version` and `uptimeSeconds`; ' +
      'with one (or with auth off) also the guest and job counts, dropped log lines and each plugin\'s health, which can name host processes, versions and URIs.',
    open: true,
    tokenOptional: true,
    responses: { 200: { description: 'ok, or degraded when a plugin is unhealthy', schema: HealthSchema } },
  },
];

export const EVENT_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/events',
    operationId: 'streamEvents',
    tag: 'events',
    summary: 'The change feed as Server-Sent Events (docs/events.md)',
    description:
      'Each event is `id: N`, `event: TYPE`, `data: {"id":N,"time":"RFC 3339","type":"job.failed","guest":"ID","data":{...}}`. ' +
      'Resume with Last-Event-ID or ?since=N (replay, then live); `reset`, `overflow` and `closing` events end or re-base a stream; `: heartbeat` comments keep it alive.',
    query: z.object({
      since: z.string().optional().meta({ description: 'Replay every event after this id (0 = the whole retained history), then go live', example: '0' }),
      guest: z.string().optional().meta({ description: 'Only events of these guests (comma-separated ids)' }),
      type: z.string().optional().meta({ description: 'Comma-separated event types (job.failed) or families (guest, job, host, plugin)', example: 'guest,job.failed' }),
    }),
    responses: {
      200: { description: 'An endless text/event-stream', contentType: 'text/event-stream' },
      400: err('A bad since, Last-Event-ID or type (the message names the valid types)'),
    },
  },
];

export const METRICS_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getPrometheusMetrics',
    tag: 'metrics',
    summary: 'Prometheus metrics of the guests and the agent (docs/metrics.md)',
    description: 'Prometheus text exposition 0.0.4. One sweep of the metrics stages per scrape, bounded by metrics.scrapeDeadlineSeconds; guests a stage had not answered for are counted in hyperkern_metrics_sweep_late_guests.',
    responses: { 200: { description: 'The exposition', contentType: 'text/plain' } },
  },
];

export const REFERENCE_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    tag: 'reference',
    summary: 'This document (OpenAPI 3.1)',
    open: true,
    responses: { 200: { description: 'The OpenAPI document', schema: z.looseObject({ openapi: z.string() }) } },
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'getDocsPage',
    tag: 'reference',
    summary: 'The interactive API reference (served by the agent, no CDN)',
    open: true,
    responses: { 200: { description: 'An HTML page', contentType: 'text/html' } },
  },
  {
    method: 'get',
    path: '/docs/:asset',
    operationId: 'getDocsAsset',
    tag: 'reference',
    summary: "The viewer's scripts and styles",
    open: true,
    responses: { 200: { description: 'A script, style sheet or image', contentType: 'application/octet-stream' }, 404: err('No such asset') },
  },
];

const typeQuery = z.object({
  type: z.string().optional().meta({ description: '"container" runs the container variant of the action (containerListImages...)', example: 'kvm' }),
});

/** Answers of the image jobs (fetch, delete). */
const imageJobResponses = (conflict: string): Record<number, ResponseDoc> => ({
  200: { description: 'With ?wait: the job completed; the image', schema: ImageSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  202: { description: 'Queued (or still running at the ?wait deadline); follow it with GET /jobs/{id}', schema: ImageSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  400: err('A bad request: the message names the field or the config option'),
  409: err(conflict),
  500: { description: 'With ?wait: the job failed (HK_ERR_JOB_FAILED, the job in `job`); or a fault in the agent', schema: ErrorSchema, headers: ['X-Guest-Job-ID', 'X-Guest-Job-Status'] },
  501: err('The config maps no stages to this action'),
  502: err('A backend stage failed'),
  503: err('The agent is stopping and accepts no new actions'),
});

export const IMAGE_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/images',
    operationId: 'listImages',
    tag: 'images',
    summary: 'List the images on this host',
    query: typeQuery,
    responses: { 200: { description: 'The images', schema: z.array(ImageSchema) }, 501: err('The config maps no stage to listImages'), 502: err('A backend stage failed') },
  },
  {
    method: 'post',
    path: '/images',
    operationId: 'fetchImage',
    tag: 'images',
    summary: 'Fetch an image from its source (or the configured image server) as a job',
    description: 'Streamed to a temporary file, checked with qemu-img (raw or self-contained qcow2), sha256 verified when given, renamed into place. Progress shows in the job Message. See docs/images.md.',
    query: waitQuery.extend({ sha256: z.string().optional().meta({ description: 'The sha256 the image must have (64 hex digits)' }) }),
    body: imageRequestSchema.meta({ id: 'ImageRequest', description: 'mistify rpc.ImageRequest plus sha256; "" or null = unset' }),
    responses: imageJobResponses('A fetch or delete of this id is in progress'),
  },
  {
    method: 'get',
    path: '/images/:id',
    operationId: 'getImage',
    tag: 'images',
    summary: 'Get an image',
    query: typeQuery,
    responses: { 200: { description: 'The image', schema: ImageSchema }, 400: err('Not an image id'), 404: err('No such image'), 501: err('The config maps no stage to getImage') },
  },
  {
    method: 'delete',
    path: '/images/:id',
    operationId: 'deleteImage',
    tag: 'images',
    summary: 'Delete an image as a job',
    query: waitQuery.extend(typeQuery.shape),
    responses: { ...imageJobResponses("A guest's disk is built on it (the message names the guest), or a transfer of it is in progress"), 404: err('No such image') },
  },
  {
    method: 'put',
    path: '/images/:id',
    operationId: 'uploadImage',
    tag: 'images',
    summary: 'Upload an image: the request body is the image (any content type), streamed to disk',
    description: 'Same checks, limits and atomic rename as a fetch; answers when the image is stored. Example: curl -T disk.qcow2 host:8080/images/ID',
    query: z.object({ sha256: z.string().optional().meta({ description: 'The sha256 the image must have' }) }),
    responses: {
      201: { description: 'Stored and checked', schema: ImageSchema },
      400: err('Not an image id, or a bad sha256'),
      409: err('A guest uses the image it would replace, or a transfer of it is in progress'),
      413: err('Larger than maxImageSizeMiB'),
      422: err('Refused bytes: not raw or qcow2, a backing file, a checksum mismatch'),
      501: err('The config maps no stage to uploadImage'),
      502: err('A backend stage failed'),
    },
  },
];

const SnapshotRequestBody = snapshotRequestSchema.nullable().meta({
  id: 'SnapshotRequest',
  description: 'mistify rpc.SnapshotRequest; null, "" and false = unset; the body may be null or absent',
});

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

/** The same six operations for a guest (every disk at one instant) and for one disk. */
function snapshotRouteDocs(prefix: string, idPrefix: string, of: string): RouteDoc[] {
  const tag = 'snapshots';
  return [
    { method: 'get', path: prefix, operationId: `list${idPrefix}Snapshots`, tag, summary: `List the snapshots of ${of}`, responses: { 200: { description: 'The snapshots', schema: z.array(SnapshotSchema) }, ...snapshotReadResponses } },
    {
      method: 'post',
      path: prefix,
      operationId: `create${idPrefix}Snapshot`,
      tag,
      summary: `Take a snapshot of ${of} as a job`,
      description: 'Named `dest` (or snap-<unix seconds>). Running and off guests both work; docs/snapshots.md says what each backend captures.',
      query: waitQuery,
      body: SnapshotRequestBody,
      responses: snapshotJobResponses(`The name is taken, a job is changing it, or the guest is not ${describeAllowedStates('createSnapshot')}`),
    },
    { method: 'get', path: `${prefix}/:name`, operationId: `get${idPrefix}Snapshot`, tag, summary: `Get a snapshot of ${of}`, responses: { 200: { description: 'The snapshot, as a one-element array (mistify answered the SnapshotResponse array)', schema: z.array(SnapshotSchema) }, 400: err('Not a snapshot name'), ...snapshotReadResponses } },
    {
      method: 'delete',
      path: `${prefix}/:name`,
      operationId: `delete${idPrefix}Snapshot`,
      tag,
      summary: `Delete a snapshot of ${of} as a job`,
      query: waitQuery,
      responses: snapshotJobResponses(`A job is changing the snapshot, or the guest is not ${describeAllowedStates('deleteSnapshot')}`),
    },
    {
      method: 'post',
      path: `${prefix}/:name/rollback`,
      operationId: `rollback${idPrefix}Snapshot`,
      tag,
      summary: `Roll ${of} back to a snapshot as a job`,
      description: `The guest must be ${describeAllowedStates('rollbackSnapshot')}. With destroyMoreRecent the later snapshots are deleted; without, a later one is a 409 from the backend.`,
      query: waitQuery,
      body: SnapshotRequestBody,
      responses: snapshotJobResponses(`The guest is not ${describeAllowedStates('rollbackSnapshot')}, or a job is changing the snapshot`),
    },
    {
      method: 'get',
      path: `${prefix}/:name/download`,
      operationId: `download${idPrefix}Snapshot`,
      tag,
      summary: `Download a snapshot of ${of} as a self-contained disk image, streamed`,
      description: 'Content-Length when the backend knows the size, else chunked. A transfer that fails midway is cut off (a short body), never ended as if complete. Example: curl -o snap.qcow2 host:8080/guests/ID/snapshots/NAME/download',
      responses: {
        200: { description: 'The image bytes', contentType: 'application/octet-stream' },
        400: err('Not a snapshot name'),
        ...snapshotReadResponses,
        409: err('A job is changing the snapshot; or, guest-wide, the guest has several disks (download each from its disk route)'),
      },
    },
  ];
}

export const SNAPSHOT_ROUTE_DOCS: RouteDoc[] = [
  ...snapshotRouteDocs('/guests/:id/snapshots', 'Guest', 'the guest (all its disks)'),
  ...snapshotRouteDocs('/guests/:id/disks/:disk/snapshots', 'Disk', 'one disk of the guest'),
];

/** Every documented route, in the order the document lists them. */
export const ROUTE_DOCS: RouteDoc[] = [...GUEST_ROUTE_DOCS, ...VNC_ROUTE_DOCS, ...HOST_ROUTE_DOCS, ...IMAGE_ROUTE_DOCS, ...SNAPSHOT_ROUTE_DOCS, ...EVENT_ROUTE_DOCS, ...METRICS_ROUTE_DOCS, ...REFERENCE_ROUTE_DOCS];
