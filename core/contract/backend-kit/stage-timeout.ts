/**
 * A lifecycle stage that waits on the guest (shutdown, reboot) takes its
 * wait from the request: `?timeout=SECONDS` reaches stages as `args.timeout`,
 * a string from a query or a number from a config's stage args.
 */
import { StageRejection } from '../plugin-api.js';

/** `args.timeout` in seconds, or `fallbackSeconds` when it is absent or empty; a 400 when it is not a positive number. */
export function timeoutArg(args: Record<string, unknown> | undefined, fallbackSeconds: number): number {
  const raw = args?.timeout;
  if (raw === undefined || raw === null || raw === '') return fallbackSeconds;
  const seconds = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new StageRejection(400, `timeout must be a positive number of seconds, got "${String(raw)}"`);
  return seconds;
}
