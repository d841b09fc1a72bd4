/**
 * Single-use console tickets, for browsers, which cannot set an
 * Authorization header on a WebSocket: `POST /guests/{id}/console/ticket`
 * (itself behind the token) hands one out; it opens one WebSocket of that
 * guest (`?ticket=`) within its lifetime, once. Tickets live in memory
 * only: an agent restart voids them, as their 30 s would anyway.
 */
import { randomBytes } from 'node:crypto';

export const TICKET_LIFETIME_MS = 30_000;
/** Outstanding tickets at most; beyond, the oldest go first (a client minting in a loop cannot grow memory). */
const MAX_OUTSTANDING = 10_000;

export interface Ticket {
  ticket: string;
  guestId: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export class ConsoleTickets {
  /** By ticket, in issue order (a Map keeps insertion order: the oldest first). */
  private readonly tickets = new Map<string, Ticket>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(guestId: string): Ticket {
    this.prune();
    if (this.tickets.size >= MAX_OUTSTANDING) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket: Ticket = { ticket: randomBytes(24).toString('base64url'), guestId, expiresAt: this.now() + TICKET_LIFETIME_MS };
    this.tickets.set(ticket.ticket, ticket);
    return ticket;
  }

  /** Uses the ticket up: true when it was issued for this guest and has not expired. */
  redeem(ticket: string, guestId: string): boolean {
    const found = this.tickets.get(ticket);
    if (!found) return false;
    this.tickets.delete(ticket);
    return found.guestId === guestId && found.expiresAt > this.now();
  }

  private prune(): void {
    const now = this.now();
    for (const [key, ticket] of this.tickets) {
      if (ticket.expiresAt > now) break; // issued in order, so the rest expire later
      this.tickets.delete(key);
    }
  }
}
