/**
 * After a guest moved to another host, every request for it here (its
 * routes under /guests/{id}: reads, actions, metrics, jobs, snapshots, the
 * console and VNC WebSockets) is answered 404 HK_ERR_GUEST_MOVED, naming
 * the host it went to, with a Location header: the same path and query on
 * the agent that holds it now (core/guests/moved-guests.ts keeps the
 * records). Only routes that exist are answered so (an unknown path stays
 * a 404 "no route"), and a guest that is on this host again is served.
 *
 * With no record held (every host that never moved a guest away) the check
 * is one comparison per request, before any work.
 */
import type { Context, Next } from 'koa';
import { Errors } from '../errors.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { MovedGuest, MovedGuests } from '../guests/moved-guests.js';
import type { IndexedRouter } from './indexed-router.js';

/** /guests/<id> and everything under it; <id> is the raw (still encoded) segment. */
const GUEST_PATH = /^\/guests\/([^/]+)(?:\/|$)/i;

export function movedGuestCheck(moved: MovedGuests, registry: Pick<GuestRegistry, 'jsonOf'>, router: Pick<IndexedRouter, 'matchIndexed'>) {
  return function checkMoved(ctx: Context, next: Next): Promise<void> {
    if (moved.size === 0) return next();
    const match = GUEST_PATH.exec(ctx.path);
    if (!match) return next();
    const id = decodeSegment(match[1]);
    if (id === undefined || registry.jsonOf(id) !== undefined) return next();
    const record = moved.find(id);
    if (!record || !router.matchIndexed(ctx.path, ctx.method).route) return next();
    ctx.set('Location', locationOf(record, ctx.path, ctx.querystring));
    throw Errors.guestMoved(record);
  };
}

/** The same path and query on the agent that holds the guest now. */
export function locationOf(record: MovedGuest, path: string, querystring: string): string {
  return `${record.url.replace(/\/+$/, '')}${path}${querystring ? `?${querystring}` : ''}`;
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
