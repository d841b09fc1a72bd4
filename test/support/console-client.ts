/**
 * A console viewer for tests: a real WebSocket (the `ws` client) on an
 * agent's GET /guests/{id}/console, collecting every byte it receives, and
 * the plain HTTP answer of a refused upgrade.
 */
import WebSocket from 'ws';

export interface ConsoleViewerClient {
  ws: WebSocket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves once the received text matches (from byte `from` on), else rejects after timeoutMs with what came. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  type(text: string): void;
  /** Resolves with the close code and reason once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export interface ConsoleOpenOptions {
  token?: string;
  ticket?: string;
  /** Runs in the 'open' event's own tick (to type before anything else happens). */
  onOpen?: (ws: WebSocket) => void;
}

export function consoleUrl(agentUrl: string, guestId: string, ticket?: string): string {
  return `${agentUrl.replace(/^http/, 'ws')}/guests/${guestId}/console${ticket ? `?ticket=${encodeURIComponent(ticket)}` : ''}`;
}

/** Opens a viewer; rejects with the HTTP answer when the agent refuses the upgrade. */
export function openConsole(agentUrl: string, guestId: string, options: ConsoleOpenOptions = {}): Promise<ConsoleViewerClient> {
  const ws = new WebSocket(consoleUrl(agentUrl, guestId, options.ticket), { headers: options.token ? { Authorization: `Bearer ${options.token}` } : {} });
  const chunks: Buffer[] = [];
  let size = 0;
  const listeners = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    chunks.push(data);
    size += data.length;
    for (const listener of listeners) listener();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const received = () => {
    if (chunks.length > 1) chunks.splice(0, chunks.length, Buffer.concat(chunks, size));
    return chunks[0] ?? Buffer.alloc(0);
  };
  const client: ConsoleViewerClient = {
    ws,
    received,
    closed,
    type: (text) => ws.send(Buffer.from(text)),
    waitFor: (pattern, timeoutMs, from = 0) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = received().subarray(from).toString('latin1').match(pattern);
          if (!match) return;
          done();
          resolve(match);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} on the console within ${timeoutMs} ms; received:\n${received().subarray(from).toString('latin1').slice(-2000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      ws.terminate();
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      options.onOpen?.(ws);
      resolve(client);
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => reject(new RefusedUpgrade(res.statusCode ?? 0, body, res.headers['content-type'] ?? '')));
    });
    ws.once('error', (error) => reject(error));
  });
}

/** The agent answered the upgrade request over plain HTTP (no WebSocket). */
export class RefusedUpgrade extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly contentType: string,
  ) {
    super(`upgrade refused: HTTP ${status} ${body}`);
  }

  get json(): { message: string; code: number; error: string } {
    return JSON.parse(this.body) as { message: string; code: number; error: string };
  }
}

/** The refusal of an upgrade that must be refused. */
export async function refusedUpgrade(agentUrl: string, guestId: string, options: ConsoleOpenOptions = {}): Promise<RefusedUpgrade> {
  try {
    const viewer = await openConsole(agentUrl, guestId, options);
    await viewer.close();
  } catch (error) {
    if (error instanceof RefusedUpgrade) return error;
    throw error;
  }
  throw new Error(`the console of ${guestId} opened; a refusal was expected`);
}
