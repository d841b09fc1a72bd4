/**
 * Where an incoming live move's streams listen (docs/migration.md): the NBD
 * export and the migration port, on the address the source reached this
 * agent at, on two free TCP ports: any, or from the operator's range
 * (`migrationPortMin`..`migrationPortMax`, a firewall's opening, as
 * libvirt's migration_port_min/max). The source is told to connect to
 * `migrationHost` when set (the address it reaches this host's streams at:
 * behind NAT or a forwarder, libvirt's migration_host), else to the address
 * they listen on. A port found free here may be taken before QEMU binds it
 * (rare): the prepare then fails and the move is undone.
 */
import { createServer } from 'node:net';
import type { IncomingPlan } from '../../core/contract/index.js';
import type { ResolvedQemuOptions } from './options.js';

type PortOptions = Pick<ResolvedQemuOptions, 'migrationHost' | 'migrationPortMin' | 'migrationPortMax'>;

/** Whether `port` (0: any) can be bound on `host` now; the port bound, or undefined. */
function tryPort(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

/** Two ports free on `host`: the NBD export's and the migration stream's. */
export async function incomingPorts(host: string, options: PortOptions): Promise<[number, number]> {
  const found: number[] = [];
  if (!options.migrationPortMin) {
    for (let i = 0; i < 10 && found.length < 2; i++) {
      const port = await tryPort(host, 0);
      if (port !== undefined && !found.includes(port)) found.push(port);
    }
  } else {
    for (let port = options.migrationPortMin; port <= options.migrationPortMax && found.length < 2; port++) {
      if ((await tryPort(host, port)) !== undefined) found.push(port);
    }
  }
  if (found.length < 2) {
    throw new Error(`no two free TCP ports for the incoming streams on ${host}${options.migrationPortMin ? ` in ${options.migrationPortMin}-${options.migrationPortMax} (migrationPortMin/Max)` : ''}`);
  }
  return [found[0], found[1]];
}

/** The plan the source gets: where to connect its streams. */
export function advertisedPlan(host: string, options: PortOptions, ports: [number, number], exports: Record<string, string>): IncomingPlan {
  const to = options.migrationHost || host;
  return { nbd: { host: to, port: ports[0], exports }, memory: { host: to, port: ports[1] } };
}
