/**
 * VNC port allocation: the lowest port in the configured range that no other
 * guest holds and nothing on the host listens on right now.
 */
import net from 'node:net';

function isFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export async function allocateVncPort(host: string, min: number, max: number, taken: Iterable<number>): Promise<number> {
  const used = new Set(taken);
  for (let port = min; port <= max; port++) {
    if (!used.has(port) && (await isFree(host, port))) return port;
  }
  throw new Error(`no free VNC port in ${min}-${max}; widen vncPortMin/vncPortMax or disable vnc`);
}
