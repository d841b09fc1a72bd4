/** Agents with the fleet plugin on a test etcd, and reads of what etcd holds. */
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

/** A fresh key prefix per test run, so runs never see each other's keys. */
export function testPrefix(): string {
  return `/hk-test-${randomUUID().slice(0, 8)}`;
}

export interface FleetAgentOptions {
  endpoint: string;
  prefix: string;
  hostId: string;
  leaseTtlSeconds?: number;
  memoryMiB?: number;
  metadataKeys?: string[];
  /** Other fleet options (e.g. maxQueuedChanges). */
  fleet?: Record<string, unknown>;
}

export function fleetAgentConfig(options: FleetAgentOptions): any {
  const config = simulatorConfig({ accessLog: false });
  config.plugins.push({
    module: 'fleet',
    options: {
      etcd: { endpoints: [options.endpoint], prefix: options.prefix, leaseTtlSeconds: options.leaseTtlSeconds ?? 4, callTimeoutMs: 2000 },
      hostId: options.hostId,
      metadataKeys: options.metadataKeys ?? ['name'],
      capacity: { cpus: 16, memoryMiB: options.memoryMiB ?? 32768 },
      ...options.fleet,
    },
  });
  return config;
}

export async function startFleetAgent(options: FleetAgentOptions): Promise<RunningAgent> {
  // Ten agents boot at once on a machine shared with other suites: a generous start bound.
  return startAgent({ config: fleetAgentConfig(options), env: { HYPERKERN_LOG_LEVEL: 'info' }, startTimeoutMs: 90_000 });
}

export function etcdClient(endpoint: string): Etcd3 {
  return new Etcd3({ hosts: endpoint, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5000 }) });
}

/** Every key under the prefix with its parsed value. */
export async function readTree(client: Etcd3, prefix: string): Promise<Map<string, any>> {
  const raw = await client.getAll().prefix(`${prefix}/`).strings();
  return new Map(Object.entries(raw).map(([key, value]) => [key, JSON.parse(value)]));
}

/** What the fleet should hold for a guest, from the agent's own answer. */
export function expectedSummary(guest: any, hostId: string, metadataKeys: string[] = ['name']): any {
  const metadata: Record<string, string> = {};
  for (const key of metadataKeys) if (guest.metadata?.[key] !== undefined) metadata[key] = guest.metadata[key];
  return { id: guest.id, hostId, state: guest.state, cpu: guest.cpu, memory: guest.memory, metadata };
}

/**
 * Waits until etcd's guests of `hostId` equal the agent's GET /guests
 * (ids, state, cpu, memory, allow-listed metadata) and the host record's
 * counts agree. Returns the milliseconds it took.
 */
export async function waitConverged(client: Etcd3, prefix: string, agent: RunningAgent, hostId: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let last = '';
  await waitFor(
    async () => {
      const local = (await agent.request('GET', '/guests')).body as any[];
      const tree = await readTree(client, prefix);
      const mirrored = [...tree.entries()]
        .filter(([key]) => key.startsWith(`${prefix}/guests/${hostId}/`))
        .map(([, value]) => { const { seq: _s, ...rest } = value; return rest; })
        .sort((a, b) => a.id.localeCompare(b.id));
      const wanted = local.map((g) => expectedSummary(g, hostId)).sort((a, b) => a.id.localeCompare(b.id));
      const host = tree.get(`${prefix}/hosts/${hostId}`);
      const counts: Record<string, number> = {};
      for (const g of local) counts[g.state] = (counts[g.state] ?? 0) + 1;
      last = `etcd ${mirrored.length} guests, agent ${wanted.length}; host record ${JSON.stringify(host?.guests)} vs ${JSON.stringify(counts)}`;
      return JSON.stringify(mirrored) === JSON.stringify(wanted) && host !== undefined && JSON.stringify(host.guests) === JSON.stringify(sortKeys(counts));
    },
    timeoutMs,
    `etcd to mirror host ${hostId} (${last})`,
  ).catch((error) => {
    throw new Error(`${(error as Error).message}; last: ${last}`);
  });
  return Date.now() - started;
}

function sortKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
