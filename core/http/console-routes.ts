/**
 * A guest's serial console (docs/console.md): the WebSocket that carries it
 * (binary frames, raw bytes both ways; text frames typed as UTF-8), the
 * single-use tickets browsers open it with, and its log.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { WebSocket } from 'ws';
import type { GuestConsoles } from '../console/guest-consoles.js';
import type { ConsoleViewer } from '../console/console-hub.js';
import { Errors } from '../errors.js';
import { acceptWebSocket, requireHandshake } from './websocket-upgrade.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';

export interface ConsoleRouteDeps {
  consoles: GuestConsoles;
  /** Open WebSockets, closed when the agent stops. */
  sessions: Set<WebSocket>;
}

/** Bytes of the log answered without ?bytes=, and at most. */
export const CONSOLE_LOG_DEFAULT_BYTES = 64 * 1024;
export const CONSOLE_LOG_MAX_BYTES = 1024 * 1024;
/** A viewer that answers no ping for this long is gone (its TCP peer vanished). */
const PING_INTERVAL_MS = 30_000;
/** After a close frame, how long a viewer gets to answer before its socket is cut. */
const CLOSE_GRACE_MS = 2_000;

/** WebSocket close codes: the console ended or the agent stops; the viewer could not keep up. */
export const CLOSE_CODES = { ended: 1001, slow: 4001 } as const;

function logBytes(ctx: Context): number {
  const raw = ctx.query.bytes;
  if (raw === undefined) return CONSOLE_LOG_DEFAULT_BYTES;
  const text = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  const bytes = Number(text);
  if (!/^\d+$/.test(text) || bytes < 1 || bytes > CONSOLE_LOG_MAX_BYTES) {
    throw Errors.badRequest(`bytes must be a whole number from 1 to ${CONSOLE_LOG_MAX_BYTES} (1 MiB); got "${text}"`);
  }
  return bytes;
}

const ConsoleTicketSchema = z
  .object({
    ticket: z.string().meta({ description: 'Opaque; good for one WebSocket of this guest (console or vnc) within 30 s' }),
    expiresAt: z.string().meta({ description: 'RFC 3339', example: '2026-12-06T10:00:30.000Z' }),
    url: z.string().meta({ description: 'The console WebSocket path with the ticket', example: '/guests/ID/console?ticket=...' }),
  })
  .meta({ id: 'ConsoleTicket' });

const noConsole = err("The guest's backend has no console (isolated plugins, JSON-RPC sub-agents): the message names it");

const openGuestConsole = defineRoute({
  method: 'get',
  path: '/guests/:id/console',
  operationId: 'openGuestConsole',
  tag: 'console',
  websocket: true,
  summary: "The guest's serial console, as a WebSocket",
  description:
    'A WebSocket handshake (Upgrade: websocket); binary frames carry the raw bytes both ways (text frames from the client are typed as their UTF-8 bytes). ' +
    'Every viewer sees the same output from the moment it attached (GET …/console/log for what came before) and may type; ' +
    'a viewer that attaches while the guest is off or starting sees its next boot from the first byte. ' +
    'Auth: the bearer token, or `?ticket=` from POST /guests/{id}/console/ticket (browsers). Every refusal is a plain HTTP answer before the upgrade. ' +
    'Close codes: 1001 the console ended or the agent stops, 4001 the viewer fell behind (docs/console.md).',
  request: { query: z.object({ ticket: z.string().optional().meta({ description: 'A console ticket, instead of the Authorization header' }) }) },
  responses: {
    101: { description: 'Switching Protocols: the WebSocket is open' },
    400: err('A malformed WebSocket handshake'),
    404: err('No such guest'),
    426: err('Not a WebSocket handshake (a plain GET)'),
    501: noConsole,
    502: err("The backend failed to open the guest's console"),
    503: err('The agent is stopping'),
    504: err("The backend did not open the guest's console in time"),
  },
  handle: (deps: ConsoleRouteDeps) => async (ctx) => {
    const id = ctx.params.id;
    deps.consoles.check(id);
    requireHandshake(ctx);
    const seat = await deps.consoles.seat(id);
    try {
      await acceptWebSocket(ctx, deps.sessions, undefined, (ws) => {
        const viewer = webSocketViewer(ws, String(ctx.state.reqId));
        // In the handshake's tick: the client's first frame finds this listener.
        ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => seat.write(asBuffer(data)));
        ws.once('close', (code: number) => seat.leave(viewer, `the viewer closed the console (WebSocket close ${code})`));
        seat.attach(viewer);
      });
    } catch (error) {
      seat.cancel();
      throw error;
    }
  },
});

const createConsoleTicket = defineRoute({
  method: 'post',
  path: '/guests/:id/console/ticket',
  operationId: 'createConsoleTicket',
  tag: 'console',
  summary: "A single-use ticket that opens one of the guest's WebSockets without a header",
  description:
    "For browsers, which cannot set Authorization on a WebSocket: `?ticket=` on GET /guests/{id}/console or /guests/{id}/vnc, once, within 30 s. Tickets live in the agent's memory only.",
  responses: { 200: { description: 'The ticket', schema: ConsoleTicketSchema }, 404: err('No such guest'), 501: noConsole },
  handle: (deps: ConsoleRouteDeps) => (ctx) => {
    const id = ctx.params.id;
    deps.consoles.check(id);
    const { ticket, expiresAt } = deps.consoles.tickets.issue(id);
    ctx.status = 200;
    ctx.body = { ticket, expiresAt: new Date(expiresAt).toISOString(), url: `/guests/${encodeURIComponent(id)}/console?ticket=${ticket}` };
  },
});

const getGuestConsoleLog = defineRoute({
  method: 'get',
  path: '/guests/:id/console/log',
  operationId: 'getGuestConsoleLog',
  tag: 'console',
  summary: "The last bytes of the guest's console output",
  description: 'Kept while nobody is attached, across guest reboots and agent restarts, rotated by size (docs/console.md); the bytes as the guest wrote them.',
  request: { query: z.object({ bytes: z.string().optional().meta({ description: `How many bytes, 1 to ${CONSOLE_LOG_MAX_BYTES} (default ${CONSOLE_LOG_DEFAULT_BYTES})`, example: '65536' }) }) },
  responses: {
    200: { description: 'The log bytes, oldest first', contentType: 'text/plain' },
    400: err(`bytes is not a whole number from 1 to ${CONSOLE_LOG_MAX_BYTES}`),
    404: err('No such guest'),
    501: noConsole,
    502: err('The backend failed to read the log'),
    504: err('The backend did not answer in time'),
  },
  handle: (deps: ConsoleRouteDeps) => async (ctx) => {
    const bytes = logBytes(ctx);
    const log = await deps.consoles.readLog(ctx.params.id, bytes);
    ctx.status = 200;
    ctx.set('Content-Type', 'text/plain; charset=utf-8');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = log;
  },
});

export const CONSOLE_ROUTES = [openGuestConsole, createConsoleTicket, getGuestConsoleLog];

function asBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A WebSocket as a console viewer, with a ping to find peers that vanished. */
function webSocketViewer(ws: WebSocket, id: string): ConsoleViewer {
  let alive = true;
  ws.on('pong', () => (alive = true));
  ws.on('error', () => ws.terminate());
  const ping = setInterval(() => {
    if (!alive) return ws.terminate();
    alive = false;
    ws.ping();
  }, PING_INTERVAL_MS);
  ping.unref();
  ws.once('close', () => clearInterval(ping));
  return {
    id,
    buffered: () => ws.bufferedAmount,
    send: (bytes) => ws.send(bytes, { binary: true }),
    end: (why, reason) => {
      // A close reason is at most 123 bytes (ours are ASCII).
      ws.close(CLOSE_CODES[why], reason.slice(0, 120));
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    },
  };
}
