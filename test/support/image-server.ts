/**
 * A real HTTP server on loopback that serves image files the way an image
 * server would, plus the failures fetches must survive: dying mid-transfer,
 * stalling, wrong status. Tests name the behaviour in the path:
 *   /NAME            the file, with Content-Length
 *   /die/NAME        the headers and half the file, then the socket is destroyed
 *   /slow/NAME       the file in 64 KiB pieces, one every 100 ms (for progress, cancel, races)
 *   /chunked/NAME    the file without Content-Length
 *   /missing/NAME    404
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';

export interface ImageServer {
  url: string;
  /** Requests seen, path by path. */
  requests: string[];
  close(): Promise<void>;
}

export async function startImageServer(dir: string): Promise<ImageServer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const [, mode, name] = /^\/(?:(die|slow|chunked|missing)\/)?([^/]+)$/.exec(req.url ?? '') ?? [];
    if (!name || mode === 'missing') return void res.writeHead(404).end('not found');
    serve(path.join(dir, decodeURIComponent(name)), mode, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function serve(file: string, mode: string | undefined, res: ServerResponse): Promise<void> {
  const size = (await stat(file)).size;
  if (mode === 'chunked') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
  if (mode === 'die') {
    const handle = await open(file, 'r');
    const half = Buffer.alloc(Math.floor(size / 2));
    await handle.read(half, 0, half.length, 0);
    await handle.close();
    res.write(half, () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  if (mode === 'slow') {
    const handle = await open(file, 'r');
    const piece = Buffer.alloc(64 * 1024);
    let offset = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      void handle.close();
      res.end();
    };
    const timer = setInterval(async () => {
      if (finished) return;
      const { bytesRead } = await handle.read(piece, 0, piece.length, offset);
      offset += bytesRead;
      if (bytesRead > 0 && !res.destroyed) res.write(piece.subarray(0, bytesRead));
      if (bytesRead === 0 || res.destroyed) finish();
    }, 100);
    res.on('close', finish);
    return;
  }
  createReadStream(file).pipe(res);
}
