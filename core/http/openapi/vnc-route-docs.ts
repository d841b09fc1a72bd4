/** The documentation of GET /guests/{id}/vnc (docs/console.md, "VNC in a browser"). */
import type { RouteDoc } from './api-registry.js';
import { ErrorSchema } from './wire-schemas.js';

export const VNC_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'get',
    path: '/guests/:id/vnc',
    operationId: 'openGuestVnc',
    tag: 'guests',
    summary: "The guest's screen: its VNC (RFB) stream over a WebSocket, for noVNC",
    description:
      'A WebSocket handshake (Upgrade: websocket); binary frames carry the raw RFB bytes both ways, the first one from the server being its ProtocolVersion ("RFB 003.008\\n"). ' +
      'The `binary` subprotocol is accepted when offered (as websockify does). The agent connects to the guest\'s VNC server where its backend says it listens ' +
      '(a unix socket or a loopback port; the config\'s actions.vnc stage), so that server need not be reachable from the network. ' +
      'Every refusal is a plain HTTP answer, never an upgrade. Example: `new RFB(element, "ws://host:8080/guests/ID/vnc")` with noVNC.',
    responses: {
      101: { description: 'Switching Protocols: the WebSocket is open' },
      400: { description: 'A malformed WebSocket handshake (version, key or subprotocol list)', schema: ErrorSchema },
      404: { description: 'No such guest', schema: ErrorSchema },
      409: { description: 'The guest is not running or suspended, or it has no VNC display', schema: ErrorSchema },
      426: { description: 'Not a WebSocket handshake (a plain GET)', schema: ErrorSchema },
      501: { description: 'The config maps no stage to "vnc"', schema: ErrorSchema },
      502: { description: "The backend's vnc stage failed, or the agent could not connect to the guest's VNC server", schema: ErrorSchema },
      504: { description: "The backend's vnc stage timed out", schema: ErrorSchema },
    },
  },
];
