/**
 * What a snapshot or a rollback cut short by a crash of the agent (kill -9,
 * power to the agent only) leaves behind, and how the agent's next start
 * puts it right, before its API answers:
 *
 * - A snapshot of a running container freezes it for the copy. Killed
 *   between the freeze and the thaw, the agent would leave it frozen for
 *   good, and the next start would take it for one the user suspended. A
 *   marker file, written before the freeze and removed after the thaw,
 *   says which freeze is the snapshot's: at start a container with the
 *   marker is thawed when it is still the same run (its init's pid, kept in
 *   the marker) and frozen; a container the user suspended never has one
 *   (a snapshot copies a frozen container as it is, without a marker).
 *   The marker is a plain write: it only has to outlive the agent's
 *   process (the page cache does), since a host crash ends the container too.
 * - The half-written copy (a dot-folder among the snapshots) is removed.
 * - A rollback swaps the layer by two renames (layer to `.replaced-T`,
 *   copy `.rollback-T` to layer). Cut between them, the container has no
 *   layer: the old one is put back (the rollback did not happen; its job
 *   ends "interrupted"). Cut after them, the old layer is left over and goes.
 */
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerLayer } from './container-snapshots.js';
import { freezerOf } from './container-snapshots-freezer.js';

/** What a rollback in progress names its folders beside the layer (`.rollback-T`, `.replaced-T`). */
export const ROLLBACK_LEFTOVER = /^\.(rollback|replaced)-([0-9a-f]+)$/;

/** What recover() found and did, for the agent's log. */
export interface LayerRecovery {
  /** The container was left frozen by a snapshot and is thawed now. */
  thawed: boolean;
  /** Half-written snapshot copies removed. */
  partials: number;
  /** The layer was missing (a rollback cut between its renames) and the old one is back. */
  layerRestored: boolean;
}

/** What the freeze marker holds: which run of the container the snapshot froze. */
interface FreezeMarker {
  initPid: number;
}

/** Written before a snapshot freezes the running container whose init is `initPid`. */
export async function markSnapshotFreeze(layer: ContainerLayer, initPid: number): Promise<void> {
  await writeFile(layer.freezeMarker, JSON.stringify({ initPid } satisfies FreezeMarker));
}

/** Removed once the container is thawed again. */
export async function clearSnapshotFreeze(layer: ContainerLayer): Promise<void> {
  await rm(layer.freezeMarker, { force: true });
}

/** Puts right what a crash during a snapshot or a rollback of this container left. */
export async function recoverLayer(layer: ContainerLayer): Promise<LayerRecovery> {
  const thawed = await thawSnapshotFreeze(layer);
  const partials = await removePartialSnapshots(layer);
  const layerRestored = await restoreLayer(layer);
  return { thawed, partials, layerRestored };
}

/** Thaws the container a snapshot froze, if the marker says so and it is the same run; the marker goes either way. */
async function thawSnapshotFreeze(layer: ContainerLayer): Promise<boolean> {
  const marker = await readMarker(layer.freezeMarker);
  if (!marker) return false;
  let thawed = false;
  const pid = await layer.initPid();
  // Another run (it was stopped and started while the agent was away) is not the snapshot's freeze.
  if (pid !== undefined && pid === marker.initPid) {
    const freezer = await freezerOf(pid);
    if (await freezer.isFrozen()) {
      await freezer.thaw();
      thawed = true;
    }
  }
  await clearSnapshotFreeze(layer);
  return thawed;
}

async function readMarker(file: string): Promise<FreezeMarker | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const marker = JSON.parse(text) as Partial<FreezeMarker>;
    return typeof marker.initPid === 'number' ? { initPid: marker.initPid } : { initPid: -1 };
  } catch {
    // Cut short while written: no pid to match, but the marker still goes.
    return { initPid: -1 };
  }
}

/** Removes the dot-folders among the snapshots (copies in progress, deletes cut short); how many. */
export async function removePartialSnapshots(layer: ContainerLayer): Promise<number> {
  const names = await readdir(layer.snapshotsDir).catch(() => [] as string[]);
  const leftovers = names.filter((name) => name.startsWith('.'));
  for (const name of leftovers) await rm(path.join(layer.snapshotsDir, name), { recursive: true, force: true });
  return leftovers.length;
}

/**
 * After a rollback cut short: the layer back if it is missing (the old one,
 * `.replaced-T`), then every rollback folder left beside it removed. True
 * when the layer had to be put back.
 */
export async function restoreLayer(layer: ContainerLayer): Promise<boolean> {
  const parent = path.dirname(layer.upperDir);
  const leftovers = (await readdir(parent)).filter((entry) => ROLLBACK_LEFTOVER.test(entry));
  let restored = false;
  if (!(await exists(layer.upperDir))) {
    const replaced = leftovers.find((entry) => entry.startsWith('.replaced-'));
    if (!replaced) throw new Error(`guest ${layer.guestId}'s container layer is missing and no earlier layer is left to put back`);
    await rename(path.join(parent, replaced), layer.upperDir);
    restored = true;
  }
  for (const entry of leftovers) await rm(path.join(parent, entry), { recursive: true, force: true });
  return restored;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}
