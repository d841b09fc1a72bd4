/**
 * GET /fleet/hosts: the live hosts of this agent's fleet (docs/fleet.md),
 * as the fleet plugin reads them from etcd, for the web console's fleet
 * page and any client that has the agent but not etcd. 501 without a
 * plugin that knows a fleet.
 */
import { z } from 'zod';
import { Errors } from '../errors.js';
import type { FleetHostRecord } from '../contract/plugin-api.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';

export interface FleetRouteDeps {
  /** The fleet's live hosts (core/plugins/fleet-hosts.ts); undefined when no plugin knows a fleet. */
  hosts?: () => Promise<FleetHostRecord[]>;
}

const Amount = z.object({ total: z.number().int(), allotted: z.number().int(), free: z.number().int().meta({ description: 'total - allotted; negative when overcommitted' }) });

const FleetHostSchema = z
  .object({
    hostId: z.string(),
    apiUrl: z.string().meta({ description: "The host's agent (its console is this + /ui)" }),
    version: z.string(),
    startedAt: z.string().meta({ description: 'When that agent started (ISO 8601)' }),
    health: z.enum(['ok', 'degraded']),
    cpus: Amount,
    memoryMiB: Amount,
    guests: z.record(z.string(), z.number().int()).meta({ description: 'guests by state' }),
    self: z.boolean().meta({ description: "This agent's own record" }),
  })
  .meta({ id: 'FleetHost' });

const listFleetHosts = defineRoute({
  method: 'get',
  path: '/fleet/hosts',
  operationId: 'listFleetHosts',
  tag: 'host',
  summary: "The fleet's live hosts with their free capacity, read from etcd by the fleet plugin",
  description: 'One etcd read of every host record (a host whose agent is down is absent once its lease expired), sorted by host id. See docs/fleet.md.',
  responses: {
    200: { description: 'The hosts', schema: z.object({ hosts: z.array(FleetHostSchema) }) },
    501: err('No plugin of this agent knows a fleet (the fleet plugin is not configured)'),
    502: err('The fleet plugin could not read etcd now'),
  },
  handle: (deps: FleetRouteDeps) => async (ctx) => {
    if (!deps.hosts) throw Errors.actionNotConfigured('this agent has no fleet: configure the fleet plugin (docs/fleet.md) to list the hosts in etcd');
    ctx.body = { hosts: await deps.hosts() };
  },
});

export const FLEET_ROUTES = [listFleetHosts];
