/**
 * The guest as the agent has it, live: read once, then taken from the event
 * stream (guest.changed and guest.observed carry the whole guest;
 * guest.deleted ends it), and read again whenever one of its jobs ended
 * (`jobsEnded` changes). A guest that moved to another agent is gone from
 * this one, which answers where it went (404 HK_ERR_GUEST_MOVED with
 * `movedTo`): read again on guest.deleted and guest.migrated, so the view
 * can say so and link there. Without an event stream it is read every
 * FALLBACK_POLL_MS instead.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Guest } from '../../core/contract/wire-types.js';
import { getJson, guestPath, messageOf, movedToOf, statusOf, type AgentRequest, type MovedTo, type SubscribeEvents } from './guest-client.js';

const FALLBACK_POLL_MS = 3000;

export interface GuestState {
  guest?: Guest;
  /** The guest is gone (deleted, or never existed). */
  gone?: string;
  /** Where it went, when it moved to another agent. */
  movedTo?: MovedTo;
  problem?: string;
}

export function useGuest(guestId: string, request: AgentRequest, jobsEnded: number, subscribe?: SubscribeEvents): GuestState {
  const [state, setState] = useState<GuestState>({});
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stopped = false;
    getJson<Guest>(request, guestPath(guestId))
      .then((guest) => !stopped && setState((s) => (s.gone ? s : { guest })))
      .catch((error) => {
        if (stopped) return;
        const movedTo = movedToOf(error);
        if (movedTo) setState({ gone: messageOf(error), movedTo });
        else if (statusOf(error) === 404) setState((s) => ({ gone: s.gone ?? `guest ${guestId} is not on this host: ${messageOf(error)}` }));
        else setState((s) => ({ ...s, problem: messageOf(error) }));
      });
    return () => {
      stopped = true;
    };
  }, [guestId, request, jobsEnded, tick]);

  useEffect(() => {
    if (!subscribe) {
      const timer = setInterval(() => setTick((t) => t + 1), FALLBACK_POLL_MS);
      return () => clearInterval(timer);
    }
    return subscribe((event) => {
      if (event.guest !== guestId) return;
      if (event.type === 'guest.deleted' || event.type === 'guest.migrated') {
        // Deleted, or moved away (guest.deleted, then guest.migrated): the agent's answer says which.
        if (event.type === 'guest.deleted') setState((s) => ({ gone: s.gone ?? `guest ${guestId} was deleted`, movedTo: s.movedTo }));
        setTick((t) => t + 1);
      } else if ((event.type === 'guest.changed' || event.type === 'guest.observed') && event.data.guest) setState({ guest: event.data.guest });
    });
  }, [guestId, subscribe]);

  return state;
}
