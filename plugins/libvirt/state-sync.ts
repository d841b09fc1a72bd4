/**
 * Keeps guest states true to libvirt: a lifecycle event about one of our
 * domains, or a (re)connect of the event stream, re-reads the domain state
 * and records it, in the order libvirt reported it. Jobs own the states of
 * guests being created or deleted, so those are left alone.
 */
import { ObserveQueue, type Guest, type GuestDirectory, type GuestState, type Logger } from '../../core/contract/index.js';
import type { DomainEvent } from './domain-events.js';
import { guestStateOf, isKnownState } from './domain-state.js';
import type { Domains } from './domains.js';
import type { VirshShell } from './virsh-shell.js';

export class StateSync {
  /** Guests whose delete job runs: events about their domain are expected. */
  private readonly deleting = new Set<string>();
  /** Keeps state refreshes (each reads, then observes) in event order, one at a time. */
  private readonly observations: ObserveQueue;

  constructor(
    private readonly domains: Domains,
    private readonly guests: GuestDirectory,
    /** The reading connection, so refreshes never wait behind a lifecycle command. */
    private readonly reader: VirshShell,
    private readonly log: Logger,
    private readonly options: { vnc: boolean },
    /** Called on every lifecycle event: cached statistics are stale. */
    private readonly onChange: () => void,
  ) {
    this.observations = new ObserveQueue(guests, log, 'libvirt');
  }

  /** Resolves when every refresh queued so far has been recorded. */
  idle(): Promise<void> {
    return this.observations.drained();
  }

  /** A delete job owns the guest's state from now on: leave it alone. */
  deleteStarted(guestId: string): void {
    this.deleting.add(guestId);
  }

  /** The delete job ended; late events about the domain find no guest, or a deleted one. */
  deleteEnded(guestId: string): void {
    setTimeout(() => this.deleting.delete(guestId), 5000).unref();
  }

  onDomainEvent(event: DomainEvent): void {
    if (event.kind !== 'lifecycle') return;
    this.onChange();
    this.observations.enqueue(async () => {
      const guest = await this.domains.guestOf(event.domain);
      if (guest) await this.refresh(guest, `libvirt event: ${event.detail}`);
    }, { domain: event.domain });
  }

  /** Re-read every managed guest's domain state (after start or a reconnect). */
  resyncAll(reason: string): void {
    this.observations.enqueue(async () => {
      for (const guest of await this.guests.list()) {
        if (this.domains.of(guest)) await this.refresh(guest, reason);
      }
    });
  }

  private async refresh(guest: Guest, reason: string): Promise<void> {
    // Jobs own these transitions; the job's result sets the state.
    if (guest.state === 'creating' || this.deleting.has(guest.id)) return;
    const domain = this.domains.of(guest)!;
    const state = await this.domains.state(domain, this.reader);
    let next: GuestState;
    let why: string;
    if (!state) {
      next = 'error';
      why = `libvirt domain ${domain} no longer exists (undefined outside hyperkern)`;
    } else if (!isKnownState(state)) {
      this.log.warn({ guest: guest.id, domain, said: state }, 'virsh domstate printed no state I know; leaving the guest state as it is');
      return;
    } else {
      next = guestStateOf(state);
      why = `${reason}; libvirt says ${state.state}${state.reason ? ` (${state.reason})` : ''}`;
    }
    const current = await this.guests.get(guest.id);
    if (!current || current.state === next || this.deleting.has(guest.id)) return;
    const change: Partial<Guest> = { state: next };
    if (next === 'running' && this.options.vnc) change.vnc = await this.domains.vncPort(domain);
    await this.guests.observe(guest.id, change, why);
  }
}
