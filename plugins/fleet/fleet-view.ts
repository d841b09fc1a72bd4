/**
 * Reading the fleet back from etcd, as any client of the key layout would
 * (docs/fleet.md): the live hosts, every host's last known guests, and the
 * hosts that can hold a new guest. Used by `hyperkern fleet`.
 */
import type { Etcd3 } from 'etcd3';
import type { GuestSummary, HostRecord, KeyLayout } from './key-layout.js';

export interface FleetView {
  hosts: HostRecord[];
  guests: GuestSummary[];
}

/** One consistent read (a single etcd revision) of hosts and guests, or one host's guests. */
export async function readFleet(client: Etcd3, layout: KeyLayout, hostId?: string): Promise<FleetView> {
  const guestsPrefix = hostId === undefined ? layout.guestsPrefix : layout.guestsOf(hostId);
  const hostsRead = await client.getAll().prefix(layout.hostsPrefix).exec();
  const guestsRead = await client.getAll().prefix(guestsPrefix).revision(hostsRead.header.revision).strings();
  const hosts = hostsRead.kvs.map((kv) => parse<HostRecord>(kv.value.toString())).filter((h): h is HostRecord => h !== undefined);
  const guests = Object.values(guestsRead).map((text) => parse<GuestSummary>(text)).filter((g): g is GuestSummary => g !== undefined);
  hosts.sort((a, b) => a.hostId.localeCompare(b.hostId));
  guests.sort((a, b) => a.hostId.localeCompare(b.hostId) || a.id.localeCompare(b.id));
  return { hosts, guests };
}

/**
 * Hosts that can hold a guest of `cpu` vCPUs and `memoryMiB`, best first:
 * healthy, enough free CPUs and memory, most free memory first.
 */
export function placeGuest(hosts: readonly HostRecord[], cpu: number, memoryMiB: number): HostRecord[] {
  return hosts
    .filter((h) => h.health === 'ok' && h.cpus.free >= cpu && h.memoryMiB.free >= memoryMiB)
    .sort((a, b) => b.memoryMiB.free - a.memoryMiB.free || b.cpus.free - a.cpus.free || a.hostId.localeCompare(b.hostId));
}

/** A value another writer left malformed is skipped, not fatal to the whole view. */
function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
