/**
 * GET /guests/{id}/vnc: the guest's VNC (RFB) server as a WebSocket, in the
 * framing noVNC speaks (binary frames of raw RFB bytes; the `binary`
 * subprotocol is accepted when offered, as websockify does). The agent
 * connects to the VNC server where the guest's backend says it listens (a
 * unix socket or loopback port), so that server need not be reachable from
 * the network: this route, behind the agent's auth, is the way in.
 */
import net from 'node:net';
import type { WebSocket } from 'ws';
import { Errors } from '../errors.js';
import type { VncEndpoint } from '../contract/plugin-api.js';
import type { VncLocator } from '../jobs/vnc-locator.js';
import { acceptWebSocket, requireHandshake } from './websocket-upgrade.js';
import { pipeWebSocket } from './websocket-pipe.js';
import { defineRoute } from './route.js';
import { err } from './openapi/common-docs.js';

export interface VncRouteDeps {
  locator: VncLocator;
  /** Open WebSockets, closed when the agent stops. */
  sessions: Set<WebSocket>;
}

/** A VNC server that accepts no connection within this long is reported unreachable. */
const CONNECT_TIMEOUT_MS = 5000;

/** Connects to the guest's VNC server; a failure is a 502 naming the error code (never a host path). */
function connect(endpoint: VncEndpoint, guestId: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ host: endpoint.host, port: endpoint.port });
    const fail = (code: string) => {
      socket.destroy();
      reject(Errors.displayUnreachable(`cannot connect to the VNC server of guest ${guestId}: ${code}`));
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => fail(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'connection error'));
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      // Until the pipe takes over: an error then destroys the socket, which the pipe sees.
      socket.on('error', () => undefined);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

const openGuestVnc = defineRoute({
  method: 'get',
  path: '/guests/:id/vnc',
  operationId: 'openGuestVnc',
  tag: 'guests',
  websocket: true,
  summary: "The guest's screen: its VNC (RFB) stream over a WebSocket, for noVNC",
  description:
    'A WebSocket handshake (Upgrade: websocket); binary frames carry the raw RFB bytes both ways, the first one from the server being its ProtocolVersion ("RFB 003.008\\n"). ' +
    'The `binary` subprotocol is accepted when offered (as websockify does). The agent connects to the guest\'s VNC server where its backend says it listens ' +
    '(a unix socket or a loopback port; the config\'s actions.vnc stage), so that server need not be reachable from the network. ' +
    'Every refusal is a plain HTTP answer, never an upgrade. Example: `new RFB(element, "ws://host:8080/guests/ID/vnc")` with noVNC.',
  responses: {
    101: { description: 'Switching Protocols: the WebSocket is open' },
    400: err('A malformed WebSocket handshake (version, key or subprotocol list)'),
    404: err('No such guest'),
    409: err('The guest is not running or suspended, or it has no VNC display'),
    426: err('Not a WebSocket handshake (a plain GET)'),
    501: err('The config maps no stage to "vnc"'),
    502: err("The backend's vnc stage failed, or the agent could not connect to the guest's VNC server"),
    504: err("The backend's vnc stage timed out"),
  },
  handle: (deps: VncRouteDeps) => async (ctx) => {
    const id = ctx.params.id;
    const endpoint = await deps.locator.locate(id);
    requireHandshake(ctx);
    const upstream = await connect(endpoint, id);
    let ws: WebSocket;
    try {
      ws = await acceptWebSocket(ctx, deps.sessions, (offered) => (offered.includes('binary') ? 'binary' : undefined));
    } catch (error) {
      upstream.destroy();
      throw error;
    }
    pipeWebSocket(ws, upstream, `the VNC server of guest ${id}`);
  },
});

export const VNC_ROUTES = [openGuestVnc];
