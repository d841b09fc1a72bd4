/**
 * A deleted container's folder removed (its config, LXC's log and pid file,
 * its console log, its writable layer, overlayfs's work dir, its snapshots).
 *
 * Most of a container's folder is a handful of small files and empty or
 * nearly empty folders (a container that wrote little has an almost empty
 * layer): up to SYNC_ENTRIES entries are removed with synchronous calls
 * (a few microseconds each on a local filesystem), where the promise-based
 * recursive rm costs a thread-pool round trip per entry (2-9 ms for a
 * stopped busybox container on a busy host). Whatever holds more (a layer
 * with data, snapshots) is left to that rm, which never blocks the event
 * loop for long.
 */
import { readdirSync, rmdirSync, unlinkSync, type Dirent } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerPaths } from './container-paths.js';

/** Entries removed synchronously at most; the rest goes to the asynchronous rm. */
const SYNC_ENTRIES = 64;

/** Removes the container's folder and everything in it; nothing when it is not there. */
export async function removeContainerFolder(paths: ContainerPaths): Promise<void> {
  const large: string[] = [];
  try {
    removeSmall(paths.dir, { left: SYNC_ENTRIES }, large);
    if (large.length === 0) return;
    await Promise.all(large.map((dir) => rm(dir, { recursive: true, force: true })));
  } catch {
    // Anything odd (a busy mount point, permissions): the rm below says what, in full.
  }
  await rm(paths.dir, { recursive: true, force: true });
}

/**
 * Removes `dir` synchronously while the budget lasts; an entry met once it
 * is spent is listed in `large`, and the folders above it stay for the rm
 * that follows. An entry already gone (LXC's monitor removes its pid file
 * as it exits) is no error.
 */
function removeSmall(dir: string, budget: { left: number }, large: string[]): void {
  const before = large.length;
  for (const entry of readdirOrNone(dir)) {
    const entryPath = path.join(dir, entry.name);
    if (budget.left <= 0) {
      large.push(entryPath);
      continue;
    }
    budget.left--;
    if (entry.isDirectory()) removeSmall(entryPath, budget, large);
    else ignoreGone(() => unlinkSync(entryPath));
  }
  if (large.length === before) ignoreGone(() => rmdirSync(dir));
}

function readdirOrNone(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function ignoreGone(remove: () => void): void {
  try {
    remove();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
