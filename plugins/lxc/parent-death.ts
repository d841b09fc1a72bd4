/**
 * Helper processes that end with the agent: util-linux's setpriv sets the
 * kernel's parent-death signal, then execs the program. A kill -9 of the
 * agent otherwise leaves them running: an lxc-monitor waiting for its next
 * event, a snapshot's cp still writing into a copy the next start removes.
 * Without setpriv the program runs as it is.
 */
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

/** The argv that runs `argv` so that it gets `signal` when the agent dies. */
export function endingWithAgent(argv: string[], signal: 'SIGTERM' | 'SIGKILL'): string[] {
  return existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', signal, '--', ...argv] : argv;
}

/** Whether an exit `code` with `stderr` is setpriv saying it could not exec the program (not installed). */
export function notExecuted(code: number | string | null | undefined, stderr: string): boolean {
  return code === 127 && /^setpriv: failed to execute/m.test(stderr);
}
