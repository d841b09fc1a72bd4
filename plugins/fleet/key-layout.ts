/**
 * The fleet's key layout in etcd and the values under it. This is a public
 * contract (docs/fleet.md): fleet tools, placers and `etcdctl watch` read
 * these keys directly, so names and fields only ever get added, never renamed.
 *
 *   <prefix>/hosts/<hostId>             HostRecord, under the agent's lease
 *   <prefix>/guests/<hostId>/<guestId>  GuestSummary, no lease (last known
 *                                       inventory survives a dead agent)
 */

export interface Capacity {
  total: number;
  /** Sum over this host's guests, whatever their state (a stopped guest keeps its claim). */
  allotted: number;
  /** total - allotted; negative when the host is overcommitted. */
  free: number;
}

export interface HostRecord {
  hostId: string;
  apiUrl: string;
  version: string;
  /** When this agent process started (ISO 8601). */
  startedAt: string;
  /** The agent's own GET /health status. */
  health: 'ok' | 'degraded';
  cpus: Capacity;
  memoryMiB: Capacity;
  /** Guest count by state, e.g. { "running": 3, "off": 1 }. */
  guests: Record<string, number>;
  /**
   * The host's write sequence: every transaction the agent commits carries
   * the next number (host record and the guests it writes alike). It only
   * grows, across restarts too, so of two copies the higher seq is fresher.
   */
  seq: number;
}

export interface GuestSummary {
  id: string;
  hostId: string;
  state: string;
  cpu: number;
  /** MiB */
  memory: number;
  /** Only the keys on the agent's `metadataKeys` allow-list. */
  metadata: Record<string, string>;
  /** The host seq of the transaction that wrote this value. */
  seq: number;
}

export class KeyLayout {
  constructor(readonly prefix: string) {}

  get hostsPrefix(): string {
    return `${this.prefix}/hosts/`;
  }

  get guestsPrefix(): string {
    return `${this.prefix}/guests/`;
  }

  host(hostId: string): string {
    return `${this.hostsPrefix}${hostId}`;
  }

  guestsOf(hostId: string): string {
    return `${this.guestsPrefix}${hostId}/`;
  }

  guest(hostId: string, guestId: string): string {
    return `${this.guestsOf(hostId)}${guestId}`;
  }
}
