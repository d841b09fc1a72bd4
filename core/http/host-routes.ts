/** Host-level routes: the host metadata, capacity and health. The job log's routes are in job-routes.ts. */
import { z } from 'zod';
import type { ActionRunner } from '../jobs/action-runner.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { HostMetadata } from '../guests/host-metadata.js';
import type { JobLog } from '../jobs/job-log.js';
import { parseMetadataPatch } from '../guests/metadata.js';
import type { PluginHealth } from '../contract/plugin-api.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';
import { HealthSchema, MetadataPatchSchema, MetadataSchema } from './openapi/wire-schemas.js';

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
  /** CPUs and MiB the host offers: the fleet plugin's capacity override, else the machine's. */
  totals: () => { cpus: number; memoryMiB: number };
}

const getHostMetadata = defineRoute({
  method: 'get',
  path: '/metadata',
  operationId: 'getHostMetadata',
  tag: 'metadata',
  summary: 'Get the host metadata',
  responses: { 200: { description: 'The metadata', schema: MetadataSchema } },
  handle: (deps: HostRouteDeps) => (ctx) => {
    ctx.body = deps.metadata.get();
  },
});

const patchHostMetadata = defineRoute({
  method: 'patch',
  path: '/metadata',
  operationId: 'patchHostMetadata',
  tag: 'metadata',
  summary: 'Merge into the host metadata',
  request: { body: { schema: MetadataPatchSchema } },
  responses: { 200: { description: 'The merged metadata', schema: MetadataSchema }, 400: err('Not a metadata patch (the message names the key)') },
  handle: (deps: HostRouteDeps) => async (ctx) => {
    ctx.body = await deps.metadata.patch(parseMetadataPatch(ctx.request.body));
  },
});

const getHealth = defineRoute({
  method: 'get',
  path: '/health',
  operationId: 'getHealth',
  tag: 'host',
  summary: "Liveness and each plugin's health",
  description:
    'Open to all and never 401, so load balancers can probe it: without a valid token (when auth.tokens are configured) it answers only `status`, `version` and `uptimeSeconds`; ' +
    "with one (or with auth off) also the guest and job counts, dropped log lines and each plugin's health, which can name host processes, versions and URIs.",
  open: true,
  tokenOptional: true,
  responses: { 200: { description: 'ok, or degraded when a plugin is unhealthy', schema: HealthSchema } },
  // Never behind auth, never 401 (load balancers probe it): liveness for
  // everyone; counts and each plugin's own view (PIDs, versions, URIs: host
  // internals) only for an authenticated request, or for all when auth is off.
  handle: (deps: HostRouteDeps) => async (ctx) => {
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
  },
});

const Amount = (unit: string) =>
  z.object({
    total: z.number().int().meta({ description: `the host's ${unit}: the fleet plugin's \`capacity\` override when set, else the machine's` }),
    allotted: z.number().int().meta({ description: `${unit} every guest claims, whatever its state` }),
    free: z.number().int().meta({ description: 'total - allotted (negative when overcommitted)' }),
  });

const HostCapacitySchema = z
  .object({
    version: z.string(),
    cpus: Amount('CPUs'),
    memoryMiB: Amount('MiB of memory'),
    guests: z.record(z.string(), z.number().int()).meta({ description: 'guests by state' }),
  })
  .meta({ id: 'HostCapacity' });

const getHostCapacity = defineRoute({
  method: 'get',
  path: '/host',
  operationId: 'getHostCapacity',
  tag: 'host',
  summary: "The host's capacity: CPUs and memory, total, allotted to guests and free; guests by state",
  description:
    "The same counts this host's fleet record carries (docs/fleet.md): the totals the fleet plugin publishes (its `capacity` option, when set) or else the machine's (os.cpus(), os.totalmem()), and every guest of the registry.",
  responses: { 200: { description: 'The capacity', schema: HostCapacitySchema } },
  handle: (deps: HostRouteDeps) => (ctx) => {
    const { cpus: totalCpus, memoryMiB: totalMemory } = deps.totals();
    let cpus = 0;
    let memory = 0;
    const guests: Record<string, number> = {};
    for (const guest of deps.registry.all()) {
      cpus += guest.cpu;
      memory += guest.memory;
      guests[guest.state] = (guests[guest.state] ?? 0) + 1;
    }
    ctx.body = {
      version: deps.version,
      cpus: { total: totalCpus, allotted: cpus, free: totalCpus - cpus },
      memoryMiB: { total: totalMemory, allotted: memory, free: totalMemory - memory },
      guests,
    };
  },
});

export const HOST_ROUTES = [getHostMetadata, patchHostMetadata, getHostCapacity, getHealth];
