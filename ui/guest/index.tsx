/**
 * The guest view's seam (ui/README.md): the shell renders <GuestView id=…/>
 * for #/guests/ID. This file only hands the view the shell's client and
 * event stream; the view itself (guest-details.tsx and its panels) takes
 * them as plain functions, so it knows nothing else of the shell.
 */
import { useMemo } from 'preact/hooks';
import { useShell } from '../shell.js';
import type { AgentEvent, AgentRequest, SubscribeEvents } from './guest-client.js';
import { GuestDetails } from './guest-details.js';

export function GuestView({ id }: { id: string }) {
  const { api, live } = useShell();
  // The shell's fetch: the token, and its 401 handling (back to the token prompt).
  const request = useMemo<AgentRequest>(() => (method, path, body) => api.fetch(method, path, { body }), [api]);
  // Every event the shell's stream brings, in order: the log notifies once per frame, so each notice reads what came since the last.
  const subscribe = useMemo<SubscribeEvents>(
    () => (listener) => {
      let seen = live.log.list()[0]?.id ?? 0;
      return live.log.subscribe(() => {
        const fresh: AgentEvent[] = [];
        for (const event of live.log.list()) {
          if (event.id <= seen) break;
          fresh.push(event as AgentEvent);
        }
        if (fresh.length > 0) seen = fresh[0].id;
        for (const event of fresh.reverse()) listener(event);
      });
    },
    [live],
  );
  return <GuestDetails guestId={id} request={request} subscribe={subscribe} directDownloads={!api.hasToken} />;
}
