/**
 * What the fleet sees of this host: the guest summaries and the host
 * record, computed from the local registry. Pure functions, so the link
 * can compare what it would write with what etcd holds.
 */
import os from 'node:os';
import type { Guest } from '../../core/contract/index.js';
import type { GuestSummary, HostRecord } from './key-layout.js';

/** A value without its seq: what decides whether etcd needs a write. */
export type Unsequenced<T> = Omit<T, 'seq'>;

export function summarize(guest: Guest, hostId: string, metadataKeys: readonly string[]): Unsequenced<GuestSummary> {
  const metadata: Record<string, string> = {};
  for (const key of metadataKeys) {
    const value = guest.metadata?.[key];
    if (value !== undefined) metadata[key] = value;
  }
  return { id: guest.id, hostId, state: guest.state, cpu: guest.cpu, memory: guest.memory, metadata };
}

export interface HostFacts {
  hostId: string;
  apiUrl: string;
  version: string;
  startedAt: number;
  health: 'ok' | 'degraded';
  capacity: { cpus?: number; memoryMiB?: number };
}

/** What the host record counts of each guest. */
export type GuestCounts = Pick<Guest, 'state' | 'cpu' | 'memory'>;

export function guestCounts(guest: Guest): GuestCounts {
  return { state: guest.state, cpu: guest.cpu, memory: guest.memory };
}

export function hostRecord(facts: HostFacts, guests: Iterable<GuestCounts>): Unsequenced<HostRecord> {
  const totalCpus = facts.capacity.cpus ?? os.cpus().length;
  const totalMemory = facts.capacity.memoryMiB ?? Math.floor(os.totalmem() / 1024 / 1024);
  let cpus = 0;
  let memory = 0;
  const byState: Record<string, number> = {};
  for (const guest of guests) {
    cpus += guest.cpu;
    memory += guest.memory;
    byState[guest.state] = (byState[guest.state] ?? 0) + 1;
  }
  return {
    hostId: facts.hostId,
    apiUrl: facts.apiUrl,
    version: facts.version,
    startedAt: new Date(facts.startedAt).toISOString(),
    health: facts.health,
    cpus: { total: totalCpus, allotted: cpus, free: totalCpus - cpus },
    memoryMiB: { total: totalMemory, allotted: memory, free: totalMemory - memory },
    guests: sortedKeys(byState),
  };
}

/** Same content, same text: key order must not make two equal records differ. */
function sortedKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
