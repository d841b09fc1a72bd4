/**
 * The fleet link as a plugin: registers this host in etcd under a lease and
 * mirrors its guest inventory there (docs/fleet.md). It contributes no
 * stages; it only reads the registry and hears of guest changes, so etcd is
 * never on the path of an API request and an outage changes nothing for
 * the local API. Runs in-process only (it needs the agent's facts).
 */
import { inject, injectable } from 'tsyringe';
import {
  PLUGIN_API_VERSION,
  Tokens,
  definePlugin,
  type AgentInfo,
  type FleetHostRecord,
  type GuestDirectory,
  type HostCapacityOverride,
  type Logger,
  type PluginHealth,
  type PeerAgent,
  type PluginInstance,
} from '../../core/contract/index.js';
import { createEtcdClient } from './etcd-client.js';
import { FleetLink } from './fleet-link.js';
import { listHosts } from './host-list.js';
import { resolveHostId } from './host-id.js';
import { locateHost } from './host-locator.js';
import type { HostFacts } from './inventory.js';
import { KeyLayout } from './key-layout.js';
import { fleetOptions, type FleetOptions } from './options.js';

@injectable()
export class FleetPlugin implements PluginInstance {
  private link: FleetLink | undefined;
  private hosts: (() => Promise<FleetHostRecord[]>) | undefined;
  private unsubscribe: (() => void) | undefined;
  private lookup: ((hostId: string) => Promise<PeerAgent | undefined>) | undefined;

  constructor(
    @inject(Tokens.Options) private readonly options: FleetOptions,
    @inject(Tokens.Guests) private readonly guests: GuestDirectory,
    @inject(Tokens.Agent) private readonly agent: AgentInfo,
    @inject(Tokens.Logger) private readonly log: Logger,
  ) {}

  /** Starts the link in the background: the agent boots and serves whether etcd answers or not. */
  async start(): Promise<void> {
    const { options, agent } = this;
    const hostId = await resolveHostId(options.hostId);
    const client = createEtcdClient(options.etcd);
    const facts = async (): Promise<HostFacts | undefined> => {
      const apiUrl = options.advertiseUrl ?? agent.url();
      if (!apiUrl) return undefined;
      return { hostId, apiUrl, version: agent.version, startedAt: agent.startedAt, health: await agent.status(), capacity: options.capacity };
    };
    const layout = new KeyLayout(options.etcd.prefix);
    this.hosts = () => listHosts(client, layout, hostId);
    const link = new FleetLink(
      client,
      {
        hostId,
        layout,
        metadataKeys: options.metadataKeys,
        leaseTtlSeconds: options.etcd.leaseTtlSeconds,
        maxQueued: options.maxQueuedChanges,
        batchWindowMs: options.batchWindowMs,
      },
      { guests: this.guests, facts },
      this.log,
    );
    this.link = link;
    this.lookup = (id) => locateHost(client, layout, id, options);
    this.unsubscribe = agent.onGuestChange((guestId) => link.guestChanged(guestId));
    link.start();
    this.log.info({ hostId, endpoints: options.etcd.endpoints, prefix: options.etcd.prefix }, 'fleet: link started');
  }

  /** Another host's agent from its live record in etcd, with the token the options give for it (host-locator.ts). */
  async locateHost(hostId: string): Promise<PeerAgent | undefined> {
    if (!this.lookup) throw new Error('the fleet link has not started');
    try {
      return await this.lookup(hostId);
    } catch (error) {
      throw new Error(`cannot read host "${hostId}" from etcd: ${(error as Error).message}`, { cause: error });
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.link?.stop();
  }

  /** The live hosts in etcd, this one marked (host-list.ts): GET /fleet/hosts. */
  async listFleetHosts(): Promise<FleetHostRecord[]> {
    if (!this.hosts) throw new Error('the fleet link has not started');
    try {
      return await this.hosts();
    } catch (error) {
      throw new Error(`cannot read the hosts from etcd: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The totals the host record publishes instead of the machine's (the `capacity` option): GET /host answers them too. */
  hostCapacity(): HostCapacityOverride {
    return this.options.capacity;
  }

  /** The link's state; only "disconnected" counts as unhealthy (the local API still works). */
  health(): PluginHealth {
    if (!this.link) return { healthy: true, message: 'not started' };
    const status = this.link.status();
    return {
      healthy: status.state !== 'disconnected',
      message: status.state === 'disconnected' ? `etcd unreachable since ${status.since}: ${status.lastError}` : `etcd link ${status.state}`,
      details: { ...status },
    };
  }
}

export default definePlugin({
  id: 'fleet',
  version: '0.1.0',
  pluginApi: PLUGIN_API_VERSION,
  description: 'Registers the host and mirrors its guest inventory in etcd for a fleet',
  options: fleetOptions,
  create: FleetPlugin,
  // It contributes no stages: it only watches.
  stages: () => ({}),
});
