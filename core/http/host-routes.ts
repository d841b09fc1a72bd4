/** Host-level routes: metadata, the job log, health. */
import type Router from '@koa/router';
import type { ActionRunner } from '../jobs/action-runner.js';
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { HostMetadata } from '../guests/host-metadata.js';
import type { JobLog } from '../jobs/job-log.js';
import { parseMetadataPatch } from '../guests/metadata.js';
import type { PluginHealth } from '../contract/plugin-api.js';
import { limitParam } from './action-params.js';
import { cancelJob } from './cancel-job.js';
import type { ImageRunner } from '../jobs/image-runner.js';

export interface HostRouteDeps {
  metadata: HostMetadata;
  jobs: JobLog;
  registry: GuestRegistry;
  runner: ActionRunner;
  pluginHealth: () => Promise<Record<string, PluginHealth>>;
  /** Log lines dropped because stdout was not read (see core/logger.ts). */
  logLinesDropped: () => number;
  version: string;
  startedAt: number;
  maxWaitSeconds: number;
  /** Host jobs (images): DELETE /jobs/{id} cancels them too. */
  images?: ImageRunner;
}

export function hostRoutes(router: Router, deps: HostRouteDeps): void {
  router.get('/metadata', (ctx) => {
    ctx.body = deps.metadata.get();
  });

  router.patch('/metadata', async (ctx) => {
    ctx.body = await deps.metadata.patch(parseMetadataPatch(ctx.request.body));
  });

  router.get('/jobs', (ctx) => {
    ctx.body = deps.jobs.list(limitParam(ctx, 100, 100000)).map((job) => deps.runner.withProgress(job));
  });

  router.get('/jobs/:id', (ctx) => {
    const job = deps.jobs.get(ctx.params.id);
    if (!job) throw Errors.jobNotFound(ctx.params.id);
    ctx.body = deps.runner.withProgress(job);
  });

  router.delete('/jobs/:id', (ctx) => cancelJob(ctx, deps, ctx.params.id));

  // Never behind auth, never 401 (load balancers probe it): liveness for
  // everyone; counts and each plugin's own view (PIDs, versions, URIs: host
  // internals) only for an authenticated request, or for all when auth is off.
  router.get('/health', async (ctx) => {
    const plugins = await deps.pluginHealth();
    const healthy = Object.values(plugins).every((p) => p.healthy);
    const liveness = {
      status: healthy ? 'ok' : 'degraded',
      version: deps.version,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    };
    if (ctx.state.authenticated !== true) {
      ctx.body = liveness;
      return;
    }
    ctx.body = {
      ...liveness,
      guests: deps.registry.size,
      jobs: deps.runner.stats,
      logLinesDropped: deps.logLinesDropped(),
      plugins,
    };
  });
}
