/**
 * Where another agent of the fleet is, for a move named by host id
 * (`POST /guests/{id}/migrate {"host": "..."}`, docs/migration.md): its live
 * host record's `apiUrl` (the key lives under that agent's lease, so a host
 * that is down is not found), and the bearer token it accepts from the
 * fleet plugin's options (`peerTokens` by host id, else `peerToken`).
 */
import type { Etcd3 } from 'etcd3';
import type { PeerAgent } from '../../core/contract/index.js';
import type { HostRecord, KeyLayout } from './key-layout.js';

export interface PeerTokens {
  /** The token every agent of the fleet accepts, when they share one. */
  peerToken?: string;
  /** Per host id; wins over peerToken. */
  peerTokens: Record<string, string>;
}

/** The host's agent, or undefined when etcd holds no live record of it. Throws when etcd cannot be read. */
export async function locateHost(client: Etcd3, layout: KeyLayout, hostId: string, tokens: PeerTokens): Promise<PeerAgent | undefined> {
  const text = await client.get(layout.host(hostId)).string();
  if (text === null) return undefined;
  let record: Partial<HostRecord>;
  try {
    record = JSON.parse(text) as Partial<HostRecord>;
  } catch {
    throw new Error(`the fleet's record of host "${hostId}" is not JSON`);
  }
  if (typeof record.apiUrl !== 'string' || record.apiUrl === '') throw new Error(`the fleet's record of host "${hostId}" has no apiUrl`);
  const token = tokens.peerTokens[hostId] ?? tokens.peerToken;
  return { hostId, url: record.apiUrl, ...(token ? { token } : {}) };
}
