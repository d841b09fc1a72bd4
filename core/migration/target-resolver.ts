/**
 * Which agent a move goes to: the request body resolved to the target's
 * base URL and token: `{url, token}` as given, or `{host}` looked up in the
 * fleet (the fleet plugin's locateHost: etcd, the token from its options).
 */
import { Errors } from '../errors.js';
import type { HostLookup } from '../plugins/host-lookup.js';
import type { PeerAddress } from './migration-records.js';

export type { HostLookup };

export interface MigrateBody {
  url?: string;
  token?: string;
  host?: string;
  /** MiB/s cap of the disk and memory copies each (a live move); absent: as fast as the link goes. */
  bandwidth?: number;
}

export async function resolveTarget(body: MigrateBody, lookup?: HostLookup): Promise<PeerAddress> {
  if (body.host !== undefined && body.host !== '') {
    if (body.url) throw Errors.badRequest('give either "host" (a fleet host id) or "url", not both');
    if (!lookup) throw Errors.badRequest(`"host" needs the fleet plugin to look hosts up; give "url" (and "token") of the target agent instead`);
    const found = await lookup(body.host);
    if (!found) throw Errors.badRequest(`no host "${body.host}" in the fleet`);
    return { url: found.url, hostId: found.hostId, ...(found.token ? { token: found.token } : {}) };
  }
  if (!body.url) throw Errors.badRequest('"url" (the target agent\'s base URL, http://HOST:PORT) is required');
  let url: URL;
  try {
    url = new URL(body.url);
  } catch {
    throw Errors.badRequest(`"url": "${body.url.slice(0, 200)}" is not a URL; give http://HOST:PORT`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw Errors.badRequest(`"url": only http and https agents (got ${url.protocol})`);
  if (url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) throw Errors.badRequest('"url": the agent\'s base URL only (no path, query or fragment)');
  const token = body.token === undefined || body.token === '' ? undefined : body.token;
  return { url: `${url.protocol}//${url.host}`, ...(token ? { token } : {}) };
}
