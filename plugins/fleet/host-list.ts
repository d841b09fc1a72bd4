/**
 * The live hosts of the fleet, for GET /fleet/hosts (the web console's
 * fleet page): every host record under `<prefix>/hosts/` (each lives under
 * its agent's lease, so a host that is down is absent), in one etcd read,
 * sorted by host id, this host's own record marked. Guests are not read:
 * the page shows capacity, and each host's own console shows its guests.
 */
import type { Etcd3 } from 'etcd3';
import type { FleetHostRecord } from '../../core/contract/index.js';
import type { HostRecord, KeyLayout } from './key-layout.js';

export async function listHosts(client: Etcd3, layout: KeyLayout, selfId: string): Promise<FleetHostRecord[]> {
  const values = await client.getAll().prefix(layout.hostsPrefix).strings();
  const hosts: FleetHostRecord[] = [];
  for (const text of Object.values(values)) {
    let record: HostRecord;
    try {
      record = JSON.parse(text) as HostRecord;
    } catch {
      continue; // Another writer's malformed value is skipped, not fatal to the list.
    }
    if (typeof record.hostId !== 'string' || typeof record.apiUrl !== 'string' || !record.cpus || !record.memoryMiB) continue;
    const { hostId, apiUrl, version, startedAt, health, cpus, memoryMiB, guests } = record;
    hosts.push({ hostId, apiUrl, version, startedAt, health, cpus, memoryMiB, guests: guests ?? {}, self: hostId === selfId });
  }
  return hosts.sort((a, b) => a.hostId.localeCompare(b.hostId));
}
