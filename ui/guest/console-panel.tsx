/**
 * The guest's serial console in the page: xterm.js on the console WebSocket
 * (docs/console.md), opened with a single-use ticket (a browser cannot send
 * the token on a WebSocket). What the guest printed before is written first
 * from the console log; then every byte the guest writes is drawn and every
 * key typed goes to the guest as bytes. xterm.js is loaded only when the
 * panel opens (its own chunk: most visits never open a console).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import '@xterm/xterm/css/xterm.css';
import type { Terminal } from '@xterm/xterm';
import { guestPath, messageOf, okResponse, ticketedSocketUrl, type AgentRequest } from './guest-client.js';

/** Bytes of the log shown on open: a screenful or two of what came before. */
const BACKLOG_BYTES = 16 * 1024;

/** Why the agent closed the console (docs/console.md close codes). */
function closeReason(event: CloseEvent): string {
  if (event.code === 1001) return 'the console ended (the guest was deleted or the agent stops)';
  if (event.code === 4001) return 'this viewer fell behind and was cut off';
  return event.reason || `closed (${event.code})`;
}

export function ConsolePanel({ guestId, request }: { guestId: string; request: AgentRequest }) {
  const holder = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('Loading the terminal…');
  const [open, setOpen] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const [screenReader, setScreenReader] = useState(false);
  const terminal = useRef<Terminal | null>(null);

  useEffect(() => {
    let stopped = false;
    let socket: WebSocket | undefined;
    let dispose: () => void = () => {};
    (async () => {
      const [{ Terminal }, { FitAddon }] = await Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')]);
      if (stopped || !holder.current) return;
      const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, screenReaderMode: screenReader });
      const fit = new FitAddon();
      term.loadAddon(fit);
      // Ctrl+] (the CLI's detach key) leaves the terminal, which otherwise keeps Tab for the guest's shell.
      term.attachCustomKeyEventHandler((key) => {
        if (key.type === 'keydown' && key.ctrlKey && key.key === ']') {
          holder.current?.closest('section')?.querySelector<HTMLInputElement>('input[type="checkbox"]')?.focus();
          return false;
        }
        return true;
      });
      term.open(holder.current);
      fit.fit();
      terminal.current = term;
      const resize = new ResizeObserver(() => fit.fit());
      resize.observe(holder.current);
      dispose = () => {
        resize.disconnect();
        term.dispose();
        terminal.current = null;
      };
      setStatus('Reading what the guest printed before…');
      // What came before; a log that cannot be read leaves the terminal empty, the live console still opens.
      const log = await okResponse(request, 'GET', guestPath(guestId, `/console/log?bytes=${BACKLOG_BYTES}`)).catch(() => undefined);
      if (log) term.write(new Uint8Array(await log.arrayBuffer()));
      if (stopped) return;
      setStatus('Connecting…');
      socket = new WebSocket(await ticketedSocketUrl(request, guestId, 'console'));
      socket.binaryType = 'arraybuffer';
      const encoder = new TextEncoder();
      // Typed keys as UTF-8; onBinary carries bytes xterm.js keeps outside UTF-8 (some mouse reports).
      term.onData((data) => socket?.readyState === WebSocket.OPEN && socket.send(encoder.encode(data)));
      term.onBinary((data) => socket?.readyState === WebSocket.OPEN && socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
      socket.onopen = () => {
        setOpen(true);
        setStatus('Connected: what you type in the terminal goes to the guest.');
      };
      socket.onmessage = (message) => term.write(new Uint8Array(message.data as ArrayBuffer));
      socket.onclose = (event) => {
        setOpen(false);
        if (!stopped) setStatus(`Disconnected: ${closeReason(event)}.`);
      };
    })().catch((error) => !stopped && setStatus(`The console could not be opened: ${messageOf(error)}`));
    return () => {
      stopped = true;
      socket?.close(1000);
      dispose();
    };
  }, [guestId, request, attempt, screenReader]);

  return (
    <section class="guest-console panel" aria-labelledby="guest-console-title">
      <h2 id="guest-console-title">Console</h2>
      <p class="guest-console-status" role="status" data-open={open ? 'true' : 'false'}>
        {status}
      </p>
      <p class="guest-form-buttons">
        <button type="button" onClick={() => setAttempt((a) => a + 1)} disabled={open}>
          Reconnect
        </button>{' '}
        <label class="check">
          <input type="checkbox" checked={screenReader} onChange={(e) => setScreenReader(e.currentTarget.checked)} /> Screen reader mode
        </label>
      </p>
      <p class="muted" id="guest-console-keys">
        Tab and every other key go to the guest while the terminal has the focus; Ctrl+] moves the focus out of it.
      </p>
      <div ref={holder} class="guest-terminal" aria-label={`Serial console of guest ${guestId}`} aria-describedby="guest-console-keys" />
    </section>
  );
}
