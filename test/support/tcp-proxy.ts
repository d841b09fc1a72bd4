/**
 * A loopback TCP proxy a test controls, standing for the network between
 * two agents: `cut()` closes its port and drops every connection through it
 * (the link gone, as the target's port closed), `restore()` opens the same
 * port again; `hold()` keeps what the target answers from the client
 * (requests still go through: the target acts, its answers wait) until
 * `release()`. It listens on `host` (or `at.host`, another loopback
 * address) on a port of its own (or `at.port`). Stopped by `close()`;
 * it holds nothing else.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** http://127.0.0.1:PORT, for clients to use instead of the target's own URL. */
  url: string;
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, host = '127.0.0.1', at: { host?: string; port?: number } = {}): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const held: { client: Socket; chunk: Buffer }[] = [];
  let holding = false;
  let server: Server | undefined;
  const listenHost = at.host ?? host;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, host);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => (holding ? held.push({ client, chunk }) : client.write(chunk)));
        upstream.once('end', () => (holding ? undefined : client.end()));
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(port, listenHost, () => resolve(s));
    });
  server = await listen(at.port ?? 0);
  const port = (server.address() as { port: number }).port;
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    url: `http://${listenHost}:${port}`,
    port,
    cut,
    restore: async () => {
      if (!server) server = await listen(port);
    },
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const { client, chunk } of held.splice(0)) if (!client.destroyed) client.write(chunk);
    },
    close: cut,
  };
}
