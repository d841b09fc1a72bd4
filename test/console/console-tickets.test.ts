/**
 * Guest tickets (console WebSockets, snapshot downloads) on a clock the test moves: good once, for their guest,
 * within 30 s; an expired one is refused (and used up) like a used one.
 * The same refusals over real HTTP are in simulator-console.test.ts.
 */
import { expect } from 'chai';
import { GuestTickets, TICKET_LIFETIME_MS } from '../../core/console/console-tickets.js';

describe('console tickets', () => {
  let now = 1_000_000;
  const tickets = new GuestTickets(() => now);

  it('opens once, for its guest, within its lifetime', () => {
    const { ticket, expiresAt } = tickets.issue('g1');
    expect(expiresAt).to.equal(now + TICKET_LIFETIME_MS);
    expect(TICKET_LIFETIME_MS).to.equal(30_000);
    expect(tickets.redeem(ticket, 'g1')).to.equal(true);
    expect(tickets.redeem(ticket, 'g1'), 'used').to.equal(false);
    const other = tickets.issue('g1').ticket;
    expect(tickets.redeem(other, 'g2'), 'another guest').to.equal(false);
    expect(tickets.redeem(other, 'g1'), 'the wrong try used it up').to.equal(false);
    expect(tickets.redeem('made-up', 'g1')).to.equal(false);
  });

  it('opens only the use it was issued for (a download ticket is no WebSocket ticket)', () => {
    const download = tickets.issue('g1', 'download:a').ticket;
    expect(tickets.redeem(download, 'g1'), 'the WebSockets').to.equal(false);
    const again = tickets.issue('g1', 'download:a').ticket;
    expect(tickets.redeem(again, 'g1', 'download:b'), 'another download').to.equal(false);
    const right = tickets.issue('g1', 'download:a').ticket;
    expect(tickets.redeem(right, 'g1', 'download:a')).to.equal(true);
  });

  it('is refused once 30 s have passed, and accepted just before', () => {
    const early = tickets.issue('g1').ticket;
    const late = tickets.issue('g1').ticket;
    now += TICKET_LIFETIME_MS - 1;
    expect(tickets.redeem(early, 'g1'), '1 ms before expiry').to.equal(true);
    now += 1;
    expect(tickets.redeem(late, 'g1'), 'expired').to.equal(false);
  });

  it('holds at most 10,000 outstanding: the oldest go first', () => {
    const first = tickets.issue('g1').ticket;
    for (let i = 0; i < 10_000; i += 1) tickets.issue('g1');
    expect(tickets.redeem(first, 'g1')).to.equal(false);
  });
});
