/** A guest's counters from the backend: CPU per vCPU, traffic per NIC, I/O per disk. */
import { z } from 'zod';
import type { MetricsAction } from '../jobs/actions.js';
import { actionParams } from './action-params.js';
import type { GuestRouteDeps } from './guest-routes.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';
import { CpuMetricsSchema, DiskMetricsSchema, NicMetricsSchema, UnavailableNicMetricsSchema } from './openapi/wire-schemas.js';

const METRICS: { type: string; action: MetricsAction; summary: string; schema: z.ZodType }[] = [
  { type: 'cpu', action: 'cpuMetrics', summary: 'CPU time per vCPU', schema: z.array(CpuMetricsSchema) },
  { type: 'nic', action: 'nicMetrics', summary: 'Counters per NIC (by NIC name)', schema: z.record(z.string(), z.union([NicMetricsSchema, UnavailableNicMetricsSchema])) },
  { type: 'disk', action: 'diskMetrics', summary: 'Counters per disk (by device)', schema: z.record(z.string(), DiskMetricsSchema) },
];

export const GUEST_METRICS_ROUTES = METRICS.map((m) =>
  defineRoute({
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
    handle: (deps: GuestRouteDeps) => async (ctx) => {
      const { args } = actionParams(ctx, deps.maxWaitSeconds);
      ctx.body = await deps.runner.metrics(m.action, ctx.params.id, args);
    },
  }),
);
