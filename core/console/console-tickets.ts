/**
 * Single-use tickets, for browsers, which cannot set an Authorization
 * header on a WebSocket or on a plain link: a ticket route (itself behind
 * the token) hands one out, bound to one guest and one use, good once
 * within its lifetime. Uses: the guest's WebSockets (`POST
 * /guests/{id}/console/ticket`: its console or its screen) and one snapshot
 * download (`POST …/snapshots/{name}/download/ticket`), so the browser can
 * navigate to the download and stream it to disk. Tickets live in memory
 * only: an agent restart voids them, as their 30 s would anyway.
 */
import { randomBytes } from 'node:crypto';

export const TICKET_LIFETIME_MS = 30_000;
/** Outstanding tickets at most; beyond, the oldest go first (a client minting in a loop cannot grow memory). */
const MAX_OUTSTANDING = 10_000;

/** What a ticket opens: the guest's WebSockets, or the download of one snapshot image (ticket-check.ts names them). */
export type TicketUse = string;
export const SOCKET_USE: TicketUse = 'socket';

export interface Ticket {
  ticket: string;
  guestId: string;
  use: TicketUse;
  /** ms since the epoch. */
  expiresAt: number;
}

export class GuestTickets {
  /** By ticket, in issue order (a Map keeps insertion order: the oldest first). */
  private readonly tickets = new Map<string, Ticket>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(guestId: string, use: TicketUse = SOCKET_USE): Ticket {
    this.prune();
    if (this.tickets.size >= MAX_OUTSTANDING) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket: Ticket = { ticket: randomBytes(24).toString('base64url'), guestId, use, expiresAt: this.now() + TICKET_LIFETIME_MS };
    this.tickets.set(ticket.ticket, ticket);
    return ticket;
  }

  /** Uses the ticket up, whatever the answer: true when it was issued for this guest and this use and has not expired. */
  redeem(ticket: string, guestId: string, use: TicketUse = SOCKET_USE): boolean {
    const found = this.tickets.get(ticket);
    if (!found) return false;
    this.tickets.delete(ticket);
    return found.guestId === guestId && found.use === use && found.expiresAt > this.now();
  }

  private prune(): void {
    const now = this.now();
    for (const [key, ticket] of this.tickets) {
      if (ticket.expiresAt > now) break; // issued in order, so the rest expire later
      this.tickets.delete(key);
    }
  }
}
