/**
 * A raw SSE reader over node:http for tests that must control the socket
 * (pause it, read what a non-browser client gets). Parses id/event/data
 * lines and comments exactly as the SSE spec frames them.
 */
import http from 'node:http';

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

export interface SseReader {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  comments: string[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  response: http.IncomingMessage;
  close(): void;
}

export function readSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const reader: SseReader = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages: [],
        comments: [],
        response: res,
        ended: new Promise((done) => {
          res.on('end', done);
          res.on('close', done);
        }),
        close: () => req.destroy(),
      };
      let buffered = '';
      let current: SseMessage = { event: 'message', data: '' };
      let hasData = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line === '') {
            if (hasData) reader.messages.push(current);
            current = { event: 'message', data: '' };
            hasData = false;
          } else if (line.startsWith(':')) {
            reader.comments.push(line.slice(1).trim());
          } else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') current.id = value;
            else if (field === 'event') current.event = value;
            else if (field === 'data') {
              current.data = hasData ? `${current.data}\n${value}` : value;
              hasData = true;
            }
          }
        }
      });
      resolve(reader);
    });
    req.on('error', reject);
  });
}
