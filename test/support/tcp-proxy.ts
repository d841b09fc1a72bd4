/**
 * A loopback TCP proxy a test controls, standing for the network between
 * two agents: `cut()` closes its port and drops every connection through it
 * (the link gone, as the target's port closed), `restore()` opens the same
 * port again. Stopped by `close()`; it holds nothing else.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** http://127.0.0.1:PORT, for clients to use instead of the target's own URL. */
  url: string;
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, host = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, host);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(port, host, () => resolve(s));
    });
  server = await listen(0);
  const port = (server.address() as { port: number }).port;
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    url: `http://${host}:${port}`,
    port,
    cut,
    restore: async () => {
      if (!server) server = await listen(port);
    },
    close: cut,
  };
}
