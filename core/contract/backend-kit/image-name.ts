/**
 * Guests name base images, kernels and initrds by file name in a backend's
 * images folder. The name comes from the API, so it must not reach another
 * host file (a path, ".."), pass for a command-line option when handed to a
 * tool (a leading "-"), or name a download the images plugin has not
 * finished (those are hidden files, with a leading ".").
 */
import { StageRejection } from '../plugin-api.js';

/** Why `name` cannot name a file in an images folder, or undefined when it can. */
export function invalidImageName(name: string): string | undefined {
  if (!name) return 'is empty';
  if (name.includes('/') || name.includes('\0')) return 'is a path';
  if (name.includes('..')) return 'contains ".."';
  if (name.startsWith('-') || name.startsWith('.')) return 'starts with "-" or "."';
  return undefined;
}

/**
 * A 400 naming `what` ("image", "kernel") when `name` is not a plain file
 * name in the images folder. The folder itself is not named: it is a host
 * path, and host paths never leave the agent.
 */
export function checkImageName(name: string, what = 'image'): void {
  const why = invalidImageName(name);
  if (why) throw new StageRejection(400, `${what} "${name}" must be a file name in the images folder, not a path (it ${why})`);
}
