/**
 * An HTTP/1.1 client on a bare TCP socket, for what ordinary clients hide:
 * whether an answer arrived whole while the body was still being sent,
 * whether the connection then ended with a FIN or a reset, and whether it
 * can carry the next request. It keeps sending the body after the answer,
 * as a client that does not watch for early answers does (the worst case
 * for a server that closes).
 */
import net from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  /** The body, parsed as JSON. */
  body: any;
}

export interface RawExchange {
  /** The answer, or undefined when the connection ended before it was whole. */
  answer?: RawAnswer;
  /** How the connection ended: 'reset' (ECONNRESET/EPIPE before the answer was read), 'closed', or 'open'. */
  ending: 'reset' | 'closed' | 'open';
  socket: net.Socket;
}

export interface BodyPlan {
  /** Total body bytes sent (zeros). */
  bytes: number;
  /** Content-Length when true; chunked transfer encoding otherwise. */
  contentLength: boolean;
  /** Default application/octet-stream. */
  contentType?: string;
}

const CHUNK = 64 * 1024;

/** Sends `method path` with a body of zeros on a new connection and reads one answer. */
export async function rawExchange(url: string, method: string, path: string, plan: BodyPlan): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return exchangeOn(socket, method, path, plan);
}

/** One request and its answer on an open socket (keep-alive reuse). */
export function exchangeOn(socket: net.Socket, method: string, path: string, plan: BodyPlan): Promise<RawExchange> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let answer: RawAnswer | undefined;
    let failed = false;
    let settled = false;
    const settle = (ending: RawExchange['ending']) => {
      if (settled) return;
      settled = true;
      socket.off('data', onData);
      resolve({ answer, ending, socket });
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      answer ??= parseAnswer(received);
      // Keep-alive: settle once whole, leaving the socket open for the next request.
      if (answer && !failed && answer.headers.connection !== 'close') settle('open');
    };
    socket.on('data', onData);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      failed = true;
      settle(error.code === 'ECONNRESET' || error.code === 'EPIPE' ? (answer ? 'closed' : 'reset') : 'closed');
    });
    socket.once('close', () => settle('closed'));
    const headers = [`${method} ${path} HTTP/1.1`, `Host: ${socket.remoteAddress}`, `Content-Type: ${plan.contentType ?? 'application/octet-stream'}`];
    headers.push(plan.contentLength ? `Content-Length: ${plan.bytes}` : 'Transfer-Encoding: chunked');
    socket.write(`${headers.join('\r\n')}\r\n\r\n`);
    void sendBody(socket, plan, () => settled || failed);
  });
}

async function sendBody(socket: net.Socket, plan: BodyPlan, stop: () => boolean): Promise<void> {
  const zeros = Buffer.alloc(CHUNK);
  for (let sent = 0; sent < plan.bytes && !stop() && socket.writable; sent += CHUNK) {
    const piece = zeros.subarray(0, Math.min(CHUNK, plan.bytes - sent));
    const framed = plan.contentLength ? piece : Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    if (!socket.write(framed)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
  }
  if (!plan.contentLength && !stop() && socket.writable) socket.write('0\r\n\r\n');
}

/** The first whole answer in `bytes` (Content-Length framed, as the agent answers), or undefined. */
function parseAnswer(bytes: Buffer): RawAnswer | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (bytes.length < end + 4 + length) return undefined;
  const text = bytes.subarray(end + 4, end + 4 + length).toString('utf8');
  return { status: Number(statusLine.split(' ')[1]), headers, body: text ? JSON.parse(text) : undefined };
}
