/**
 * VNC port allocation: the lowest port in the configured range that no other
 * guest holds and nothing on the host listens on right now.
 */
import net from 'node:net';
import type { GuestDirectory } from '../../core/contract/index.js';

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

/**
 * Ports handed out by creates that may not be persisted yet (creates of
 * different guests run in parallel): one allocation at a time, so two
 * cannot pick the same port.
 */
export class VncPorts {
  private readonly reserved = new Set<number>();
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly guests: GuestDirectory) {}

  allocate(guestId: string, range: { vncListen: string; vncPortMin: number; vncPortMax: number }): Promise<number> {
    const allocation = this.last.then(async () => {
      const taken = (await this.guests.list()).filter((g) => g.id !== guestId).map((g) => g.vnc);
      const port = await allocateVncPort(range.vncListen, range.vncPortMin, range.vncPortMax, [...taken, ...this.reserved]);
      this.reserved.add(port);
      return port;
    });
    this.last = allocation.catch(() => {});
    return allocation;
  }

  release(port: number): void {
    this.reserved.delete(port);
  }
}
