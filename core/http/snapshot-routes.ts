/**
 * Snapshot routes of the mistify API, for a whole guest (every disk at one
 * instant) and for one of its disks:
 *   GET  …/snapshots                   listSnapshots     200 [Snapshot]
 *   POST …/snapshots                   createSnapshot    200 [Snapshot] + X-Guest-Job-ID
 *   GET  …/snapshots/{name}            getSnapshot       200 [Snapshot]; 404
 *   DELETE …/snapshots/{name}          deleteSnapshot    200 [Snapshot] + X-Guest-Job-ID; 404
 *   POST …/snapshots/{name}/rollback   rollbackSnapshot  200 [Snapshot] + X-Guest-Job-ID; 404; 409 unless off
 *   GET  …/snapshots/{name}/download   downloadSnapshot  200 the disk image, streamed
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
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { Errors, messageOf } from '../errors.js';
import type { AgentLogger } from '../logger.js';
import type { ActionRunner } from '../jobs/action-runner.js';
import type { JobLog } from '../jobs/job-log.js';
import type { AcceptedSnapshotJob, SnapshotRunner, SnapshotTarget } from '../jobs/snapshot-runner.js';
import type { SnapshotRequest } from '../contract/wire-types.js';
import { actionParams } from './action-params.js';
import { answerJob } from './job-answer.js';
import { goBool, goString } from './go-values.js';

export interface SnapshotRouteDeps {
  snapshots: SnapshotRunner;
  runner: ActionRunner;
  jobs: JobLog;
  log: AgentLogger;
  maxWaitSeconds: number;
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

/** The two route prefixes: a guest's snapshots, and those of one of its disks. */
const PREFIXES: { path: string; target: (params: Record<string, string>) => SnapshotTarget }[] = [
  { path: '/guests/:id/snapshots', target: (p) => ({ guestId: p.id }) },
  { path: '/guests/:id/disks/:disk/snapshots', target: (p) => ({ guestId: p.id, disk: p.disk }) },
];

export function snapshotRoutes(router: Router, deps: SnapshotRouteDeps): void {
  const { snapshots, runner, jobs, maxWaitSeconds } = deps;

  /** ?wait as given, else the longest wait (mistify answered once the action was done). */
  const jobParams = (ctx: Context) => {
    const params = actionParams(ctx, maxWaitSeconds);
    return ctx.query.wait === undefined ? { ...params, waitMs: maxWaitSeconds * 1000 } : params;
  };

  const answer = (ctx: Context, target: SnapshotTarget, accepted: AcceptedSnapshotJob, waitMs: number) =>
    answerJob(ctx, jobs, {
      jobId: accepted.job.ID,
      waitMs,
      wait: (jobId, ms) => runner.waitForJob(jobId, ms),
      pending: () => [accepted.snapshot],
      // A deleted snapshot cannot be read back: the answer is what it was.
      done: async (end) => [end.job.Action === 'deleteSnapshot' ? accepted.snapshot : await snapshots.get(target, accepted.snapshot.id, {}).catch(() => accepted.snapshot)],
    });

  for (const prefix of PREFIXES) {
    router.get(prefix.path, async (ctx) => {
      const { args } = actionParams(ctx, maxWaitSeconds);
      ctx.body = await snapshots.list(prefix.target(ctx.params), args);
    });

    router.post(prefix.path, async (ctx) => {
      const { waitMs, args } = jobParams(ctx);
      const target = prefix.target(ctx.params);
      await answer(ctx, target, await snapshots.create(target, parseSnapshotRequest(ctx.request.body), args), waitMs);
    });

    router.get(`${prefix.path}/:name`, async (ctx) => {
      const { args } = actionParams(ctx, maxWaitSeconds);
      ctx.body = [await snapshots.get(prefix.target(ctx.params), ctx.params.name, args)];
    });

    router.delete(`${prefix.path}/:name`, async (ctx) => {
      parseSnapshotRequest(ctx.request.body);
      const { waitMs, args } = jobParams(ctx);
      const target = prefix.target(ctx.params);
      await answer(ctx, target, await snapshots.remove(target, ctx.params.name, args), waitMs);
    });

    router.post(`${prefix.path}/:name/rollback`, async (ctx) => {
      const body = parseSnapshotRequest(ctx.request.body);
      const { waitMs, args } = jobParams(ctx);
      const target = prefix.target(ctx.params);
      await answer(ctx, target, await snapshots.rollback(target, ctx.params.name, body, args), waitMs);
    });

    router.get(`${prefix.path}/:name/download`, async (ctx) => {
      const { args } = actionParams(ctx, maxWaitSeconds);
      const { stream, size } = await snapshots.download(prefix.target(ctx.params), ctx.params.name, args);
      // Piped here, not by Koa: a stream that fails after the headers went
      // out must cut the connection (the client sees a short body), never
      // end it as if complete; and a client that goes away stops the stream.
      ctx.respond = false;
      ctx.status = 200;
      ctx.set('Content-Type', 'application/octet-stream');
      ctx.set('Content-Disposition', `attachment; filename="${ctx.params.name}.qcow2"`);
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
    });
  }
}
