/**
 * Which routes a single-use ticket opens (core/console/console-tickets.ts),
 * and nothing else: `?ticket=` is looked at only on a GET of
 *   /guests/{id}/console, /guests/{id}/vnc            (use "socket")
 *   /guests/{id}/snapshots/{name}/download            (the download of that snapshot)
 *   /guests/{id}/disks/{disk}/snapshots/{name}/download (the download of that disk's snapshot)
 * and it must have been issued for that guest and that use. On any other
 * route a ticket is no credential (auth.ts asks for the token).
 */
import type { Context } from 'koa';
import { SOCKET_USE, type GuestTickets, type TicketUse } from '../console/console-tickets.js';
import type { TicketCheck } from './auth.js';

const SOCKET_PATH = /^\/guests\/([^/]+)\/(?:console|vnc)$/;
const DOWNLOAD_PATH = /^\/guests\/([^/]+)(?:\/disks\/([^/]+))?\/snapshots\/([^/]+)\/download$/;

/** The use a snapshot download ticket is bound to: one snapshot of the guest (one disk's, or guest-wide). */
export function downloadUse(snapshot: string, disk?: string): TicketUse {
  return JSON.stringify(['snapshot-download', disk ?? null, snapshot]);
}

/** `?ticket=` on a ticket route, checked and used up (auth.ts asks before the token). */
export function ticketCheck(tickets: GuestTickets): TicketCheck {
  return (ctx: Context) => {
    const ticket = ctx.query.ticket;
    if (ticket === undefined || ctx.method !== 'GET') return undefined;
    const route = routeOf(ctx.path);
    if (!route) return undefined;
    return typeof ticket === 'string' && tickets.redeem(ticket, route.guestId, route.use);
  };
}

function routeOf(path: string): { guestId: string; use: TicketUse } | undefined {
  const socket = SOCKET_PATH.exec(path);
  if (socket) return { guestId: safeDecode(socket[1]), use: SOCKET_USE };
  const download = DOWNLOAD_PATH.exec(path);
  if (download) return { guestId: safeDecode(download[1]), use: downloadUse(safeDecode(download[3]), download[2] === undefined ? undefined : safeDecode(download[2])) };
  return undefined;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
