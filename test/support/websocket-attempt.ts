/**
 * A WebSocket handshake as a client makes it, for tests of WebSocket routes:
 * either the socket opened (with the subprotocol the server picked and the
 * first message), or the server answered plain HTTP (status and JSON body),
 * which is how every refusal must look.
 */
import WebSocket from 'ws';

export type Attempt =
  | { upgraded: true; ws: WebSocket; protocol: string; requestId: string | undefined }
  | { upgraded: false; status: number; body: any; headers: Record<string, string | string[] | undefined> };

export function attemptWebSocket(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), options.protocols ?? [], { headers: options.headers });
    let requestId: string | undefined;
    ws.once('upgrade', (res) => (requestId = res.headers['x-request-id'] as string | undefined));
    ws.once('open', () => resolve({ upgraded: true, ws, protocol: ws.protocol, requestId }));
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

/** The next binary message on `ws`, within `timeoutMs`. */
export function nextMessage(ws: WebSocket, timeoutMs: number): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
    ws.once('message', (data: Buffer, binary: boolean) => {
      clearTimeout(timer);
      resolve({ data, binary });
    });
  });
}
