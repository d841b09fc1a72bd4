/**
 * The wire shapes the console reads: the agent's own types (bundled from
 * core/contract, not copied) and the few answers that have no shared type.
 */
import type { Guest, Image, Job } from '../../core/contract/wire-types.js';
import type { GuestState } from '../../core/contract/lifecycle.js';

export type { Guest, Image, Job, GuestState };

/** A job as GET /jobs answers it: the wire Job plus the runner's progress fields. */
export type JobView = Job & { Stage?: string; QueuePosition?: number };

/** One event of GET /events (docs/events.md). */
export interface AgentEvent {
  id: number;
  time: string;
  type: string;
  guest?: string;
  data: {
    guest?: Guest;
    guestId?: string;
    job?: Job;
    reason?: string;
    plugin?: string;
    healthy?: boolean;
    message?: string;
    metadata?: Record<string, string>;
    [key: string]: unknown;
  };
}

/** GET /health (the details only come with a valid token, or when the agent has no tokens). */
export interface Health {
  status: 'ok' | 'degraded';
  version: string;
  uptimeSeconds: number;
  guests?: number;
  jobs?: { queued: number; running: number; complete: number; failed: number };
  plugins?: Record<string, { healthy: boolean; message?: string; details?: Record<string, unknown> }>;
}

export interface Amount {
  total: number;
  allotted: number;
  free: number;
}

/** GET /host. */
export interface HostCapacity {
  version: string;
  cpus: Amount;
  memoryMiB: Amount;
  guests: Record<string, number>;
}

/** The agent's error answer. */
export interface ErrorBody {
  message: string;
  code: number;
  error: string;
}

/** The display name of a guest: its `name` metadata, else its id. */
export function guestName(guest: Guest): string {
  const name = guest.metadata?.name;
  return typeof name === 'string' && name !== '' ? name : guest.id;
}

/** One live host of the fleet (GET /fleet/hosts): its record in etcd (docs/fleet.md). */
export interface FleetHost {
  hostId: string;
  apiUrl: string;
  version: string;
  startedAt: string;
  health: 'ok' | 'degraded';
  cpus: Amount;
  memoryMiB: Amount;
  guests: Record<string, number>;
  /** This agent's own record. */
  self: boolean;
}
