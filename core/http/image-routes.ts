/**
 * Image routes of the mistify API, plus upload:
 *   GET /images[?type=T]   listImages            200 [Image]
 *   POST /images           fetchImage            202 Image (pending) + X-Guest-Job-ID
 *   GET /images/{id}       getImage              200 Image; 404
 *   DELETE /images/{id}    deleteImage           202 + X-Guest-Job-ID; 404; 409 in use
 *   PUT /images/{id}       uploadImage           201 Image, the body streamed to the backend
 * `?type=container` (or a container ImageRequest) runs the container variant.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { ImageRunner, AcceptedImageJob } from '../jobs/image-runner.js';
import type { JobLog } from '../jobs/job-log.js';
import type { ImageRequest } from '../contract/wire-types.js';
import { actionParams, checkActionBody } from './action-params.js';
import { answerJob } from './job-answer.js';
import { goString } from './go-values.js';
import { defineRoute, type ResponseDoc } from './route.js';
import { ACTION_BODY, err, waitQuery } from './openapi/common-docs.js';
import { ErrorSchema, ImageSchema } from './openapi/wire-schemas.js';
import { guardedBody } from './unread-body.js';

export interface ImageRouteDeps {
  images: ImageRunner;
  jobs: JobLog;
  maxWaitSeconds: number;
}

/** Go clients send every field, `""` or `null` when unset; unknown fields are ignored. */
export const imageRequestSchema = z.object({
  id: z.string({ error: 'id is required: the name the image gets on this host' }).min(1, 'id is required: the name the image gets on this host').max(255),
  type: goString(32),
  dest: goString(255),
  source: goString(8192),
  sha256: goString(64),
});

function parseImageRequest(body: unknown, query: Record<string, string>): ImageRequest {
  const parsed = imageRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw Errors.badRequest(`${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`);
  }
  const request: ImageRequest = { ...parsed.data, sha256: parsed.data.sha256 || query.sha256 || '' };
  return request;
}

function requestFor(id: string, args: Record<string, string>): ImageRequest {
  return { id, type: args.type ?? '', dest: '', source: '', sha256: args.sha256 ?? '' };
}

const answer = (ctx: Context, deps: ImageRouteDeps, accepted: AcceptedImageJob, waitMs: number) =>
  answerJob(ctx, deps.jobs, {
    jobId: accepted.job.ID,
    waitMs,
    wait: (jobId, ms) => deps.jobs.waitFor(jobId, ms),
    pending: () => accepted.image,
    done: async (end) => {
      if (end.job.Action.endsWith('eleteImage')) return { ...accepted.image, status: 'deleted' };
      return deps.images.get(deps.jobs.argsOf(end.job.ID).request as ImageRequest, {});
    },
  });

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

const listImages = defineRoute({
  method: 'get',
  path: '/images',
  operationId: 'listImages',
  tag: 'images',
  summary: 'List the images on this host',
  request: { query: typeQuery },
  responses: { 200: { description: 'The images', schema: z.array(ImageSchema) }, 501: err('The config maps no stage to listImages'), 502: err('A backend stage failed') },
  handle: (deps: ImageRouteDeps) => async (ctx) => {
    const { args } = actionParams(ctx, deps.maxWaitSeconds);
    ctx.body = await deps.images.list({ id: '', type: args.type ?? '', dest: '', source: '' }, args);
  },
});

const fetchImage = defineRoute({
  method: 'post',
  path: '/images',
  operationId: 'fetchImage',
  tag: 'images',
  summary: 'Fetch an image from its source (or the configured image server) as a job',
  description: 'Streamed to a temporary file, sha256 verified when given, checked (raw or self-contained qcow2, told from its own bytes), renamed into place. Progress shows in the job Message. A file: source is checked in the request (400, one message whatever the reason). See docs/images.md. With "type": "container": an OCI image (docker://HOST/NAME:TAG, oci-archive:URL, oci:/dir/layout) fetched with skopeo and unpacked once into a read-only base; other transports, a registry host left implicit and plain HTTP off loopback are refused with 400 (docs/containers.md).',
  request: {
    query: waitQuery.extend({ sha256: z.string().optional().meta({ description: 'The sha256 the image must have (64 hex digits)' }) }),
    body: { required: true, schema: imageRequestSchema.meta({ id: 'ImageRequest', description: 'mistify rpc.ImageRequest plus sha256; "" or null = unset' }) },
  },
  responses: imageJobResponses('A fetch or delete of this id is in progress'),
  handle: (deps: ImageRouteDeps) => async (ctx) => {
    const { waitMs, args } = actionParams(ctx, deps.maxWaitSeconds);
    const request = parseImageRequest(ctx.request.body, args);
    await answer(ctx, deps, await deps.images.fetch(request, args), waitMs);
  },
});

const getImage = defineRoute({
  method: 'get',
  path: '/images/:id',
  operationId: 'getImage',
  tag: 'images',
  summary: 'Get an image',
  request: { query: typeQuery },
  responses: { 200: { description: 'The image', schema: ImageSchema }, 400: err('Not an image id'), 404: err('No such image'), 501: err('The config maps no stage to getImage') },
  handle: (deps: ImageRouteDeps) => async (ctx) => {
    const { args } = actionParams(ctx, deps.maxWaitSeconds);
    ctx.body = await deps.images.get(requestFor(ctx.params.id, args), args);
  },
});

const deleteImage = defineRoute({
  method: 'delete',
  path: '/images/:id',
  operationId: 'deleteImage',
  tag: 'images',
  summary: 'Delete an image as a job',
  request: { query: waitQuery.extend(typeQuery.shape), body: ACTION_BODY },
  responses: { ...imageJobResponses("A guest's disk is built on it (the message names the guest), or a transfer of it is in progress"), 404: err('No such image') },
  handle: (deps: ImageRouteDeps) => async (ctx) => {
    checkActionBody(ctx.request.body);
    const { waitMs, args } = actionParams(ctx, deps.maxWaitSeconds);
    await answer(ctx, deps, await deps.images.remove(requestFor(ctx.params.id, args), args), waitMs);
  },
});

const uploadImage = defineRoute({
  method: 'put',
  path: '/images/:id',
  operationId: 'uploadImage',
  tag: 'images',
  summary: 'Upload an image: the request body is the image (any content type), streamed to disk',
  description: 'Same checks, limits and atomic rename as a fetch; answers when the image is stored. Example: curl -T disk.qcow2 host:8080/images/ID',
  request: {
    query: z.object({ sha256: z.string().optional().meta({ description: 'The sha256 the image must have' }) }),
    // The bytes go to the stage unread, whatever their label (json-body.ts leaves them alone).
    body: { required: true, contentType: '*/*', schema: z.string().meta({ description: 'The image: raw or qcow2 bytes', format: 'binary' }) },
  },
  responses: {
    201: { description: 'Stored and checked', schema: ImageSchema },
    400: err('Not an image id, or a bad sha256'),
    409: err('A guest uses the image it would replace, or a transfer of it is in progress'),
    413: err('Larger than maxImageSizeMiB: announced by Content-Length, or found mid-body in a chunked upload'),
    422: err('Refused bytes: not raw or qcow2, a qcow2 naming a backing or data file, a checksum mismatch'),
    501: err('The config maps no stage to uploadImage'),
    502: err("A backend stage failed, or the images folder's file system has no room for the image (nothing kept)"),
  },
  handle: (deps: ImageRouteDeps) => async (ctx) => {
    const { args } = actionParams(ctx, deps.maxWaitSeconds);
    const length = ctx.request.length;
    // The stage may destroy the stream it reads (on any refusal); never the request, whose socket carries the answer.
    const image = await deps.images.upload(requestFor(ctx.params.id, args), guardedBody(ctx.req), length, args);
    ctx.status = 201;
    ctx.body = image;
  },
});

export const IMAGE_ROUTES = [listImages, fetchImage, getImage, deleteImage, uploadImage];

/** Requests whose body is a stream for a stage, not JSON for the router. */
export function isStreamedBody(method: string, path: string): boolean {
  // A cold move's disk (migration-routes.ts) too.
  return method === 'PUT' && (/^\/images\/[^/]+$/.test(path) || /^\/migrations\/[^/]+\/disks\/[^/]+$/.test(path));
}
