/**
 * A WebSocket handshake as a client makes it, for tests of WebSocket routes:
 * either the socket opened (with the subprotocol the server picked and the
 * first message), or the server answered plain HTTP (status and JSON body),
 * which is how every refusal must look.
 */
import WebSocket from 'ws';

export type Attempt =
  | { upgraded: true; ws: WebSocket; protocol: string; requestId: string | undefined; messages: MessageQueue }
  | { upgraded: false; status: number; body: any; headers: Record<string, string | string[] | undefined> };

export function attemptWebSocket(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), options.protocols ?? [], { headers: options.headers });
    // From the start: a frame that came with the 101 is emitted in the same tick as 'open'.
    const messages = new MessageQueue(ws);
    let requestId: string | undefined;
    ws.once('upgrade', (res) => (requestId = res.headers['x-request-id'] as string | undefined));
    ws.once('open', () => resolve({ upgraded: true, ws, protocol: ws.protocol, requestId, messages }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: the test's assertion on body will say so
        }
        resolve({ upgraded: false, status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    ws.once('error', reject);
  });
}

/** Every message a WebSocket received, in order, for a test to take one at a time. */
export class MessageQueue {
  private readonly queued: { data: Buffer; binary: boolean }[] = [];
  private waiter?: () => void;

  constructor(ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.queued.push({ data, binary });
      this.waiter?.();
    });
  }

  /** The next message, within `timeoutMs`. */
  async next(timeoutMs: number): Promise<{ data: Buffer; binary: boolean }> {
    if (this.queued.length === 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          reject(new Error(`no WebSocket message within ${timeoutMs} ms`));
        }, timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
    return this.queued.shift()!;
  }
}
