/**
 * Image routes of the mistify API, plus upload:
 *   GET /images[?type=T]   listImages            200 [Image]
 *   POST /images           fetchImage            202 Image (pending) + X-Guest-Job-ID
 *   GET /images/{id}       getImage              200 Image; 404
 *   DELETE /images/{id}    deleteImage           202 + X-Guest-Job-ID; 404; 409 in use
 *   PUT /images/{id}       uploadImage           201 Image, the body streamed to the backend
 * `?type=container` (or a container ImageRequest) runs the container variant.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { ImageRunner, AcceptedImageJob } from '../jobs/image-runner.js';
import type { JobLog } from '../jobs/job-log.js';
import type { ImageRequest } from '../contract/wire-types.js';
import { actionParams, checkActionBody } from './action-params.js';
import { answerJob } from './job-answer.js';
import { goString } from './go-values.js';

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

export function imageRoutes(router: Router, deps: ImageRouteDeps): void {
  const { images, jobs, maxWaitSeconds } = deps;

  const answer = (ctx: Context, accepted: AcceptedImageJob, waitMs: number) =>
    answerJob(ctx, jobs, {
      jobId: accepted.job.ID,
      waitMs,
      wait: (jobId, ms) => jobs.waitFor(jobId, ms),
      pending: () => accepted.image,
      done: async (end) => {
        if (end.job.Action.endsWith('eleteImage')) return { ...accepted.image, status: 'deleted' };
        return images.get(jobs.argsOf(end.job.ID).request as ImageRequest, {});
      },
    });

  router.get('/images', async (ctx) => {
    const { args } = actionParams(ctx, maxWaitSeconds);
    ctx.body = await images.list({ id: '', type: args.type ?? '', dest: '', source: '' }, args);
  });

  router.post('/images', async (ctx) => {
    const { waitMs, args } = actionParams(ctx, maxWaitSeconds);
    const request = parseImageRequest(ctx.request.body, args);
    await answer(ctx, await images.fetch(request, args), waitMs);
  });

  router.get('/images/:id', async (ctx) => {
    const { args } = actionParams(ctx, maxWaitSeconds);
    ctx.body = await images.get(requestFor(ctx.params.id, args), args);
  });

  router.delete('/images/:id', async (ctx) => {
    checkActionBody(ctx.request.body);
    const { waitMs, args } = actionParams(ctx, maxWaitSeconds);
    await answer(ctx, await images.remove(requestFor(ctx.params.id, args), args), waitMs);
  });

  router.put('/images/:id', async (ctx) => {
    const { args } = actionParams(ctx, maxWaitSeconds);
    const length = ctx.request.length;
    const image = await images.upload(requestFor(ctx.params.id, args), ctx.req, length, args);
    ctx.status = 201;
    ctx.body = image;
  });
}

/** Requests whose body is a stream for a stage, not JSON for the router. */
export function isStreamedBody(method: string, path: string): boolean {
  return method === 'PUT' && /^\/images\/[^/]+$/.test(path);
}
