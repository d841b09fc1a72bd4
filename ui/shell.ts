/**
 * What every view gets from the shell (ui/README.md): the API client and
 * the live stores, through one Preact context. A view calls useShell() and
 * then useStore(store) for each store it draws from.
 */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiClient } from './api/client.js';
import type { LiveSync } from './store/live-sync.js';

export interface Shell {
  api: ApiClient;
  /** guests, jobs, log (events), host (health, capacity), stream (connection state). */
  live: LiveSync;
}

export const ShellContext = createContext<Shell | undefined>(undefined);

export function useShell(): Shell {
  const shell = useContext(ShellContext);
  if (!shell) throw new Error('useShell() outside the console shell');
  return shell;
}
