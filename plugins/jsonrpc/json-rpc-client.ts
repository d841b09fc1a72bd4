/**
 * A JSON-RPC 1.0 over HTTP client as mistify-agent's sub-agents expect it
 * (gorilla/rpc's json codec): POST `{"method","params":[REQUEST],"id"}`,
 * answer `{"result","error","id"}` where `error` is null or a string. A
 * non-2xx status carries a plain-text error (gorilla answers 400 that way
 * for an unknown method or bad params).
 *
 * Connections are kept alive and pooled by undici, at most `maxPending` of
 * them, each carrying one call at a time: so `maxPending` is the number of
 * calls in flight, and later calls queue in the pool until one is free or
 * their signal aborts (the stage's timeout).
 */
import type { Readable } from 'node:stream';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';

/**
 * The stage's signal is what bounds a call (its timeout is the stage's, and
 * answers 504 naming the stage); undici's own header and body timeouts are
 * only a backstop behind it. They run on undici's coarse timers, which tick
 * about every 500 ms and can fire that much early: set to the stage's bound
 * exactly, they sometimes won the race and the timeout came out as a 502.
 */
const UNDICI_TIMER_SLACK_MS = 1_000;

export class JsonRpcError extends Error {
  override readonly name = 'JsonRpcError';
}

export interface JsonRpcClientOptions {
  port: number;
  path: string;
  maxPending: number;
}

export class JsonRpcClient {
  readonly url: string;
  private readonly pool: Pool;
  private nextId = 0;

  constructor(private readonly options: JsonRpcClientOptions) {
    const origin = `http://127.0.0.1:${options.port}`;
    this.url = `${origin}${options.path}`;
    this.pool = new Pool(origin, { connections: options.maxPending, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  /** Calls in flight and waiting for a connection. */
  get stats(): { running: number; pending: number; connected: number } {
    return { running: this.pool.stats.running, pending: this.pool.stats.pending, connected: this.pool.stats.connected };
  }

  async call(method: string, param: unknown, signal: AbortSignal, timeoutMs: number): Promise<unknown> {
    this.nextId = this.nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextId + 1;
    const id = this.nextId;
    let statusCode: number;
    let text: string;
    try {
      const response = await this.pool.request({
        path: this.options.path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ method, params: [param], id }),
        signal,
        headersTimeout: timeoutMs + UNDICI_TIMER_SLACK_MS,
        bodyTimeout: timeoutMs + UNDICI_TIMER_SLACK_MS,
      });
      statusCode = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new JsonRpcError(`${method} at ${this.url}: ${transportProblem(error, this.options.port)}`, { cause: error });
    }
    if (statusCode < 200 || statusCode >= 300) {
      throw new JsonRpcError(`${method} at ${this.url} answered HTTP ${statusCode}: ${clip(text.trim()) || '(empty body)'}`);
    }
    let reply: { result?: unknown; error?: unknown; id?: unknown };
    try {
      reply = JSON.parse(text);
    } catch {
      throw new JsonRpcError(`${method} at ${this.url} answered something that is not JSON: ${clip(text)}`);
    }
    if (typeof reply !== 'object' || reply === null || !('result' in reply || 'error' in reply)) {
      throw new JsonRpcError(`${method} at ${this.url} answered ${clip(text)}, which is not a JSON-RPC reply ({"result","error","id"})`);
    }
    if (reply.error !== null && reply.error !== undefined) {
      const message = typeof reply.error === 'string' ? reply.error : JSON.stringify(reply.error);
      throw new JsonRpcError(`${method} at ${this.url} answered an error: ${clip(message)}`);
    }
    if (reply.id !== undefined && reply.id !== null && String(reply.id) !== String(id)) {
      throw new JsonRpcError(`${method} at ${this.url} answered call id ${JSON.stringify(reply.id)} to call id ${id}`);
    }
    return reply.result ?? null;
  }

  /**
   * POST `param` as JSON to the endpoint and hand back the answer's body as a
   * stream, unread (mistify-agent-image's snapshot download). A non-2xx
   * answer is read (bounded) and thrown with its status.
   */
  async stream(param: unknown, signal: AbortSignal, timeoutMs: number): Promise<{ body: Readable; size?: number }> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.pool.request({
        path: this.options.path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(param),
        signal,
        headersTimeout: timeoutMs + UNDICI_TIMER_SLACK_MS,
        // The transfer may take long; a sub-agent that stops sending for this long is dead.
        bodyTimeout: Math.max(timeoutMs, 60_000),
      });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new JsonRpcError(`download at ${this.url}: ${transportProblem(error, this.options.port)}`, { cause: error });
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = clip((await response.body.text().catch(() => '')).trim());
      throw new JsonRpcError(`download at ${this.url} answered HTTP ${response.statusCode}: ${text || '(empty body)'}`, { cause: { status: response.statusCode } });
    }
    const length = Number(response.headers['content-length']);
    return { body: response.body, ...(Number.isSafeInteger(length) && length >= 0 && response.headers['content-length'] !== undefined ? { size: length } : {}) };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

function transportProblem(error: unknown, port: number): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ECONNREFUSED') return `connection refused: nothing listens on 127.0.0.1:${port}; is the sub-agent running?`;
  if (code === 'ECONNRESET' || error instanceof undiciErrors.SocketError) return 'the sub-agent closed the connection before answering';
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) return 'the sub-agent did not answer in time';
  return `${(error as Error)?.message ?? String(error)}${code ? ` (${code})` : ''}`;
}

function clip(text: string): string {
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}
