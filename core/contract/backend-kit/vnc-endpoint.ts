/**
 * Where the agent connects to a VNC server that listens on TCP. A server
 * listening on every address (0.0.0.0, ::) is reached on loopback: the agent
 * runs on the same host, and GET /guests/{id}/vnc is how clients elsewhere
 * reach it.
 */
/** `{host, port}` to connect to a VNC server that listens on `listen` (an address, brackets allowed) and `port`. */
export function vncTcpEndpoint(listen: string, port: number): { host: string; port: number } {
  const host = listen.replace(/^\[(.*)\]$/, '$1');
  if (host === '0.0.0.0' || host === '') return { host: '127.0.0.1', port };
  if (host === '::') return { host: '::1', port };
  return { host, port };
}
