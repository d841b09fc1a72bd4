/**
 * Every client command ends on SIGTERM, SIGINT (Ctrl-C) or SIGHUP (the
 * terminal went away), with the shell's code for it (128 + the signal's
 * number): what is on the screen (a spinner, a hidden cursor, a terminal
 * in raw mode) is put back first by the cleanups registered here. Without
 * this, a live display's listeners (ora's signal-exit) could leave the
 * signal handled and the process running.
 */
import { constants } from 'node:os';

const cleanups = new Set<() => void>();
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
let installed = false;

/** Runs `cleanup` if a stop signal arrives before the returned function is called. */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Installed once by the client commands (not by `serve`: the agent stops gracefully itself). */
export function endOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) {
    process.once(signal, () => {
      for (const cleanup of cleanups) {
        try {
          cleanup();
        } catch {
          // The exit matters more than a display that could not be tidied.
        }
      }
      process.exit(128 + constants.signals[signal]);
    });
  }
}
