/**
 * Requests to the other agent of a move, over its own HTTP API with its
 * bearer token. A refusal it answers (4xx) is kept as what it said, with
 * its status, so the client of the move reads the target's own reason; a
 * fault or no answer at all is a PeerUnreachable, which the state machine
 * treats as "unknown" (docs/migration.md), never as a refusal.
 */
import type { Readable } from 'node:stream';
import type { PeerAddress } from './migration-records.js';

/** The other agent answered with an error. */
export class PeerRefused extends Error {
  override readonly name = 'PeerRefused';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The other agent could not be reached, or did not answer in time. */
export class PeerUnreachable extends Error {
  override readonly name: string = 'PeerUnreachable';
}

/**
 * A 2xx whose body is not the JSON the protocol answers (something else on
 * that port, a proxy's page, a cut-off body). Unreachable for the state
 * machine: it says nothing about what the other agent did.
 */
export class PeerProtocolError extends PeerUnreachable {
  override readonly name = 'PeerProtocolError';
}

export interface PeerRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  /** A streamed body (a disk), sent as is with its length. */
  stream?: { data: Readable; size: number };
  timeoutMs?: number;
}

export async function callPeer<T>(peer: PeerAddress, request: PeerRequest): Promise<T> {
  const url = `${peer.url.replace(/\/+$/, '')}${request.path}`;
  const headers: Record<string, string> = {};
  if (peer.token) headers.authorization = `Bearer ${peer.token}`;
  let body: string | Readable | undefined;
  if (request.stream) {
    headers['content-type'] = 'application/octet-stream';
    headers['content-length'] = String(request.stream.size);
    body = request.stream.data;
  } else if (request.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(request.body);
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      body: body as BodyInit | undefined,
      signal: AbortSignal.timeout(request.timeoutMs ?? 30_000),
      ...(request.stream ? { duplex: 'half' } : {}),
    } as RequestInit);
  } catch (error) {
    throw new PeerUnreachable(`${request.method} ${request.path} on ${peer.url}: ${describeFetchError(error)}`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // The head came, the body did not (the link cut, the time up): no answer.
    throw new PeerUnreachable(`${request.method} ${request.path} on ${peer.url}: the answer was cut off (${describeFetchError(error)})`);
  }
  if (response.ok) return parseAnswer<T>(text, response.status, peer, request);
  let message = text.slice(0, 500);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    /* not JSON: the text as it is */
  }
  if (response.status >= 500 && response.status !== 501) throw new PeerUnreachable(`${peer.url} answered ${response.status}: ${message}`);
  throw new PeerRefused(response.status, message);
}

function parseAnswer<T>(text: string, status: number, peer: PeerAddress, request: PeerRequest): T {
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    const start = text.slice(0, 80).replace(/\s+/g, ' ');
    throw new PeerProtocolError(`${request.method} ${request.path} on ${peer.url}: answered ${status} with a body that is not JSON ("${start}"); is a hyperkern agent listening there?`);
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === 'TimeoutError') return 'no answer in time';
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
