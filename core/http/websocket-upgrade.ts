/**
 * WebSocket routes are ordinary Koa routes. An upgrade request runs through
 * the same app as every request (request id, auth, errors as JSON, access
 * log, router), answered on a ServerResponse over its socket, so whatever
 * refuses it (401, 404, 409, 501) is a plain HTTP answer and the connection
 * is never upgraded. Only a route that calls {@link acceptWebSocket} after
 * its checks completes the handshake; every other answer closes the socket.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Context } from 'koa';
import { WebSocketServer, type WebSocket } from 'ws';
import { Errors } from '../errors.js';

interface PendingUpgrade {
  socket: Socket;
  head: Buffer;
}

/** Upgrade requests in flight through the app, by request. */
const pending = new WeakMap<IncomingMessage, PendingUpgrade>();

/** Hands every upgrade request of `server` to `handler` (the Koa app's callback) with a response on its socket. */
export function routeUpgrades(server: Server, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // A client gone mid-handshake must not crash the agent.
    socket.on('error', () => socket.destroy());
    pending.set(req, { socket, head });
    const res = new ServerResponse(req);
    // An HTTP answer to an upgrade request ends its connection.
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    handler(req, res);
  });
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Subprotocols the client offers (Sec-WebSocket-Protocol); a malformed list is a 400. */
function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  const offered = header.split(',').map((p) => p.trim());
  if (offered.some((p) => !TOKEN.test(p)) || new Set(offered).size !== offered.length) {
    throw Errors.badRequest('Sec-WebSocket-Protocol must be a comma-separated list of distinct tokens');
  }
  return offered;
}

/**
 * Checks the request is a WebSocket handshake this agent can complete,
 * before the route does anything it would have to undo: a plain GET is a
 * 426 naming what to send; a malformed handshake a 400 (ws itself would
 * answer those with an empty body and no JSON).
 */
export function requireHandshake(ctx: Context): void {
  const req = ctx.req;
  if (!pending.has(req) || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
    ctx.set('Upgrade', 'websocket');
    ctx.set('Connection', 'Upgrade');
    throw Errors.upgradeRequired(`${ctx.path} is a WebSocket: connect with a WebSocket client (Upgrade: websocket), e.g. noVNC or websocat`);
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    ctx.set('Sec-WebSocket-Version', '13');
    throw Errors.badRequest(`Sec-WebSocket-Version must be 13; got ${version === undefined ? 'none' : `"${version}"`}`);
  }
  if (!KEY.test(req.headers['sec-websocket-key'] ?? '')) throw Errors.badRequest('Sec-WebSocket-Key must be 16 bytes in base64');
  offeredProtocols(req);
}

/** The request id each accepted request's 101 carries, as every other answer does. */
const requestIds = new WeakMap<IncomingMessage, string>();

/** The subprotocol each accepted request answers with (ws asks per handshake). */
const chosenProtocol = new WeakMap<IncomingMessage, string>();

/** One ws server for every route: it only completes handshakes (noServer), it owns no socket. */
const handshakes = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  // Clients of these routes send keystrokes and pointer events: small frames.
  maxPayload: 1024 * 1024,
  // Without this ws would accept whatever the client offered first.
  handleProtocols: (_offered, req) => chosenProtocol.get(req) ?? false,
});
handshakes.on('headers', (headers: string[], req: IncomingMessage) => {
  const id = requestIds.get(req);
  if (id !== undefined) headers.push(`X-Request-ID: ${id}`);
});

/**
 * Completes the handshake the route has checked ({@link requireHandshake}):
 * Koa answers nothing more, the socket is the WebSocket's from here on.
 * `protocol` picks the subprotocol to accept from those offered (none when
 * it returns undefined). Sessions are added to `sessions` until they close,
 * so the agent can close them when it stops. `onOpen` runs in the
 * handshake's tick, before any frame of the client is read (the promise's
 * callbacks come a microtask later).
 */
export function acceptWebSocket(
  ctx: Context,
  sessions: Set<WebSocket>,
  protocol: (offered: string[]) => string | undefined = () => undefined,
  onOpen?: (ws: WebSocket) => void,
): Promise<WebSocket> {
  const upgrade = pending.get(ctx.req);
  if (!upgrade) throw new Error('acceptWebSocket called on a request that is not an upgrade (requireHandshake first)');
  pending.delete(ctx.req);
  const chosen = protocol(offeredProtocols(ctx.req));
  ctx.respond = false;
  // For the access log and request metrics: the request ended in a switch of protocols.
  ctx.status = 101;
  ctx.res.detachSocket(upgrade.socket);
  if (chosen !== undefined) chosenProtocol.set(ctx.req, chosen);
  // The edge checked it is a sane token (letters, digits, ._:-), so it is a safe header value.
  if (typeof ctx.state.reqId === 'string') requestIds.set(ctx.req, ctx.state.reqId);
  return new Promise((resolve, reject) => {
    // ws drops a handshake whose client already hung up without calling back.
    const gone = () => reject(new Error('the client closed the connection during the WebSocket handshake'));
    upgrade.socket.once('close', gone);
    handshakes.handleUpgrade(ctx.req, upgrade.socket, upgrade.head, (ws) => {
      upgrade.socket.off('close', gone);
      sessions.add(ws);
      ws.once('close', () => sessions.delete(ws));
      // In the handshake's own tick, before any frame is read: a listener added here sees the client's first bytes.
      onOpen?.(ws);
      resolve(ws);
    });
  });
}

/** At agent stop: every open WebSocket gets a close frame, then is cut after `graceMs`. */
export async function closeSessions(sessions: Set<WebSocket>, reason: string, graceMs: number): Promise<void> {
  if (sessions.size === 0) return;
  const open = [...sessions];
  const closed = Promise.all(open.map((ws) => new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : ws.once('close', () => resolve())))));
  for (const ws of open) ws.close(1001, reason);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
  clearTimeout(timer);
  for (const ws of open) ws.terminate();
}
