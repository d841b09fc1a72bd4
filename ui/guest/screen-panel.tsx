/**
 * The guest's screen in the page: noVNC on GET /guests/{id}/vnc, opened
 * with a single-use ticket. noVNC is loaded only when this panel opens (its
 * own chunk, kept out of the page's first load), and only once the agent
 * says the guest has a screen: a plain GET of the route answers 426 (not a
 * WebSocket) when it found the guest's VNC server, else its refusal says
 * why (409 no display, 501 no vnc stage), which the panel shows (a failed
 * WebSocket would say nothing).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type RFB from '@novnc/novnc';
import { agentError, guestPath, messageOf, statusOf, ticketedSocketUrl, type AgentRequest } from './guest-client.js';

export function ScreenPanel({ guestId, request }: { guestId: string; request: AgentRequest }) {
  const holder = useRef<HTMLDivElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [status, setStatus] = useState('Loading the VNC client…');
  const [connected, setConnected] = useState(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let stopped = false;
    (async () => {
      setStatus('Looking for the guest\'s screen…');
      const probe = await request('GET', guestPath(guestId, '/vnc')).then(
        async (response) => (response.status === 426 ? { status: 426, message: '' } : { status: response.status, message: (await agentError(response)).message }),
        (error: unknown) => ({ status: statusOf(error), message: messageOf(error) }),
      );
      if (stopped) return;
      if (probe.status !== 426) return setStatus(`No screen: ${probe.message || `the agent answered ${probe.status}`}`);
      const { default: RFBClass } = await import('@novnc/novnc');
      const url = await ticketedSocketUrl(request, guestId, 'vnc');
      if (stopped || !holder.current) return;
      setStatus('Connecting…');
      const screen = new RFBClass(holder.current, url, { shared: true, wsProtocols: ['binary'] });
      screen.scaleViewport = true;
      screen.addEventListener('connect', () => {
        setConnected(true);
        setStatus('Connected: keys and the mouse go to the guest while the screen has the focus.');
      });
      screen.addEventListener('disconnect', (event) => {
        setConnected(false);
        const clean = (event as CustomEvent<{ clean: boolean }>).detail?.clean;
        if (!stopped) setStatus(clean ? 'Disconnected (the guest powered off, or the screen closed).' : 'Disconnected: the screen could not be reached (is the guest running with VNC on?).');
      });
      screen.addEventListener('securityfailure', (event) => setStatus(`Refused: ${(event as CustomEvent<{ reason?: string }>).detail?.reason ?? 'security failure'}`));
      rfb.current = screen;
    })().catch((error) => !stopped && setStatus(`The screen could not be opened: ${messageOf(error)}`));
    return () => {
      stopped = true;
      rfb.current?.disconnect();
      rfb.current = null;
      setConnected(false);
    };
  }, [guestId, request, attempt]);

  return (
    <section class="guest-screen panel" aria-labelledby="guest-screen-title">
      <h2 id="guest-screen-title">Screen</h2>
      <p role="status" class="guest-screen-status" data-connected={connected ? 'true' : 'false'}>
        {status}
      </p>
      <p class="guest-form-buttons">
        <button type="button" disabled={!connected} onClick={() => rfb.current?.sendCtrlAltDel()}>
          Send Ctrl+Alt+Del
        </button>{' '}
        <button type="button" disabled={connected} onClick={() => setAttempt((a) => a + 1)}>
          Reconnect
        </button>
      </p>
      <div ref={holder} class="guest-vnc" tabIndex={-1} aria-label={`Screen of guest ${guestId} (a picture; the serial console is the text way in)`} role="img" />
    </section>
  );
}
