/**
 * Backends put QMP, serial and console sockets under their data dir, and a
 * unix socket path is bounded: a longer one fails at bind or connect with an
 * error that does not say why. Checking first says so and names the fix.
 */

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
export const MAX_UNIX_SOCKET_PATH = 107;

/**
 * Throws (a fault of the host's configuration, not of the request) when
 * `socketPath` is too long. The message says how long, not the path: it can
 * reach a client (a job's message), and host paths never leave the agent.
 */
export function checkUnixSocketPath(socketPath: string, what = 'socket'): void {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_UNIX_SOCKET_PATH) {
    throw new Error(`${what} path (under the data dir) is ${bytes} bytes, longer than the ${MAX_UNIX_SOCKET_PATH} bytes unix sockets allow; configure a shorter dataDir`);
  }
}
