/**
 * Where a running guest's VNC server listens, as QEMU itself reports it
 * (QMP query-vnc): what the process was started with, whatever the options
 * say now. A unix socket (option `vncSocket`) or a TCP port.
 */
import { vncTcpEndpoint, type VncEndpoint } from '../../core/contract/index.js';
import type { QmpClient } from './qmp-client.js';

interface QueryVnc {
  enabled: boolean;
  family?: 'ipv4' | 'ipv6' | 'unix' | 'vsock' | 'unknown';
  /** The address; "" for a unix socket. */
  host?: string;
  /** The port, or a unix socket's path. */
  service?: string;
}

/** The endpoint of the guest's VNC server, or undefined when QEMU runs without one. */
export async function vncEndpointOf(qmp: Pick<QmpClient, 'execute'>): Promise<VncEndpoint | undefined> {
  const vnc = await qmp.execute<QueryVnc>('query-vnc');
  if (!vnc.enabled || !vnc.service) return undefined;
  if (vnc.family === 'unix') return { path: vnc.service };
  const port = Number(vnc.service);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`QEMU reports its VNC server on "${vnc.service}", which is no port`);
  return vncTcpEndpoint(vnc.host ?? '', port);
}
