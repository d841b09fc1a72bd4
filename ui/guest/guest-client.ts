/**
 * What the guest view needs of the agent: one authenticated `request` (the
 * shell's ApiClient.fetch, with the bearer token when auth is on), wrapped
 * here into JSON reads, queued actions (the job id comes back in the
 * X-Guest-Job-ID header) and the console tickets the WebSockets need. An
 * error answer may come back as a Response or be thrown as an Error with a
 * `status` (the shell's ApiError): both read the same here.
 */
import type { AgentEvent } from '../api/types.js';
import type { Job } from '../../core/contract/wire-types.js';

/** The shell's authenticated fetch: the agent's origin, the token when one is set; `body` is sent as JSON. */
export type AgentRequest = (method: string, path: string, body?: unknown) => Promise<Response>;

// The shell's event type (a type only: nothing of the shell is bundled with the guest view for it).
export type { AgentEvent } from '../api/types.js';

/** Subscribes to the shell's event stream; returns the unsubscribe. */
export type SubscribeEvents = (listener: (event: AgentEvent) => void) => () => void;

/** A running move's progress, as GET /jobs/{id} shows it (docs/migration.md). */
export interface MigrationProgress {
  phase: string;
  target: string;
  bytesSent: number;
  bytesLeft: number;
  bytesTotal: number;
}

/** A job as GET /jobs/{id} answers it, with hyperkern's progress extensions. */
export type JobView = Job & { Stage?: string; QueuePosition?: number; Migration?: MigrationProgress };

/** The agent's error answer, its message kept as the Error's. */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    /** The error answer's other fields (a moved guest's `movedTo`). */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The `{message, code}` of an error answer, or the status line when the body is not JSON. */
export async function agentError(response: Response): Promise<AgentError> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof body.message === 'string') return new AgentError(body.message, response.status, typeof body.error === 'string' ? body.error : undefined, body as Record<string, unknown>);
  } catch {
    // not JSON: a proxy's page, a cut connection
  }
  return new AgentError(`${response.status} ${response.statusText || 'error'}${text ? `: ${text.slice(0, 200)}` : ''}`, response.status);
}

/** The HTTP status of an error answer, however it came (AgentError, the shell's ApiError). */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** Where a guest went, from the 404 its old host answers after a move (HK_ERR_GUEST_MOVED, docs/migration.md). */
export interface MovedTo {
  hostId?: string;
  url: string;
}

export function movedToOf(error: unknown): MovedTo | undefined {
  const moved = (error as { body?: { movedTo?: unknown } } | null)?.body?.movedTo as Partial<MovedTo> | undefined;
  return moved && typeof moved.url === 'string' ? { url: moved.url, ...(typeof moved.hostId === 'string' ? { hostId: moved.hostId } : {}) } : undefined;
}

/** The answer, when it is a success; the agent's message as an error otherwise. */
export async function okResponse(request: AgentRequest, method: string, path: string, body?: unknown): Promise<Response> {
  const response = await request(method, path, body);
  if (!response.ok) throw await agentError(response);
  return response;
}

/** The JSON body of a successful answer. */
export async function getJson<T>(request: AgentRequest, path: string, method = 'GET', body?: unknown): Promise<T> {
  return (await (await okResponse(request, method, path, body)).json()) as T;
}

/** Queues a job (an action, a snapshot change) without waiting for it; answers its id. */
export async function queueJob(request: AgentRequest, method: string, path: string, body?: unknown): Promise<string> {
  const separator = path.includes('?') ? '&' : '?';
  const response = await okResponse(request, method, `${path}${separator}wait=0`, body);
  const jobId = response.headers.get('X-Guest-Job-ID');
  if (!jobId) throw new AgentError(`the agent queued no job (answer ${response.status} without X-Guest-Job-ID)`, response.status);
  return jobId;
}

/** The path of a guest's resource: the id escaped once, here. */
export function guestPath(guestId: string, rest = ''): string {
  return `/guests/${encodeURIComponent(guestId)}${rest}`;
}

/**
 * A WebSocket URL of the guest (console or vnc) with a fresh single-use
 * ticket: browsers cannot send the token on a WebSocket, and without tokens
 * configured the ticket is issued all the same and ignored.
 */
export async function ticketedSocketUrl(request: AgentRequest, guestId: string, which: 'console' | 'vnc'): Promise<string> {
  const issued = await getJson<{ ticket: string }>(request, guestPath(guestId, '/console/ticket'), 'POST');
  const url = new URL(guestPath(guestId, `/${which}`), location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('ticket', issued.ticket);
  return url.toString();
}

/** A message for anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
