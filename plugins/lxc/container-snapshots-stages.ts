/**
 * The LXC backend's snapshot stages (docs/snapshots.md, "Snapshot stage
 * contract"; docs/containers.md, "Snapshots"): SnapshotStageRequests in,
 * mistify's Snapshot `{id, size}` out, on ContainerSnapshots. They are the
 * container-prefixed actions (containerCreateSnapshot ...), so a container
 * guest's snapshot routes reach them and a VM's reach its own backend. The
 * kernel has checked guest, state (a rollback only of a stopped container),
 * name and existence; these check what only the layer knows (a later
 * snapshot blocking a rollback) and do the work.
 */
import {
  StageRejection,
  type Guest,
  type Snapshot,
  type SnapshotDownload,
  type SnapshotResponse,
  type SnapshotStageRequest,
  type StageContext,
  type StageRoles,
} from '../../core/contract/index.js';
import path from 'node:path';
import type { ContainerPaths } from './container-paths.js';
import type { ContainerLayer, ContainerSnapshots, LayerSnapshot } from './container-snapshots.js';
import { initPid } from './container-state.js';

const MIB = 1024 * 1024;

/**
 * What the snapshot stages serve, for the plugin manifest's `serves`: the
 * checks run in the request, and bounds for copying a large layer (the
 * stage default is too short for gigabytes on ext4, where nothing is shared).
 */
export const CONTAINER_SNAPSHOT_ROLES = {
  containerCreateSnapshot: { action: 'containerCreateSnapshot', timeoutSeconds: 600 },
  containerDeleteSnapshot: { action: 'containerDeleteSnapshot', timeoutSeconds: 600 },
  containerCheckRollbackSnapshot: { action: 'containerRollbackSnapshot', check: true },
  containerRollbackSnapshot: { action: 'containerRollbackSnapshot', timeoutSeconds: 600 },
  containerDownloadSnapshot: { action: 'containerDownloadSnapshot', timeoutSeconds: 3600 },
} as const satisfies StageRoles;

function wire(snapshot: LayerSnapshot): Snapshot {
  return { id: snapshot.name, size: Math.ceil(snapshot.bytes / MIB) };
}

/** A container's layer has no disks: a disk route names one it does not have. */
function refuseDisk(request: SnapshotStageRequest): void {
  if (request.disk) throw new StageRejection(404, `guest ${request.guest.id} is a container: it has no disk ${request.disk}; its snapshots are of its root layer (/guests/${request.guest.id}/snapshots)`);
}

/** A create names the new snapshot in `dest`; the kernel copies it into `id`. */
const newName = (request: SnapshotStageRequest) => request.dest || request.id;

/** The layer of the container at `paths`, its snapshots in its folder (so they go with it). */
export function containerLayer(paths: ContainerPaths): ContainerLayer {
  return {
    guestId: paths.guestId,
    upperDir: paths.upper,
    snapshotsDir: path.join(paths.dir, 'snapshots'),
    freezeMarker: path.join(paths.dir, 'snapshot-freeze.json'),
    initPid: () => initPid(paths),
  };
}

/** The host's cp, du and tar, found on PATH. */
export const HOST_SNAPSHOT_TOOLS = { cp: 'cp', du: 'du', tar: 'tar' };

/** The stages on the containers `pathsOf` names. */
export function layerSnapshotStages(snapshots: ContainerSnapshots, pathsOf: (guestId: string) => ContainerPaths) {
  return containerSnapshotHandlers(snapshots, (guest) => containerLayer(pathsOf(guest.id)));
}

export function containerSnapshotHandlers(snapshots: ContainerSnapshots, layerOf: (guest: Guest) => ContainerLayer) {
  const layer = (request: SnapshotStageRequest) => {
    refuseDisk(request);
    return layerOf(request.guest);
  };
  return {
    containerCreateSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({
      snapshots: [wire(await snapshots.create(layer(request), newName(request), ctx.signal))],
    }),
    containerListSnapshots: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => ({
      snapshots: (await snapshots.list(layer(request))).map(wire),
    }),
    /** The one snapshot, or none (the kernel reads none as a 404). */
    containerGetSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => {
      const found = await snapshots.get(layer(request), request.id);
      return { snapshots: found ? [wire(found)] : [] };
    },
    containerDeleteSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => {
      await snapshots.delete(layer(request), request.id);
      return { snapshots: [] };
    },
    /** Sync: the 409 for later snapshots without destroyMoreRecent, before the job is queued. */
    containerCheckRollbackSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => {
      await snapshots.checkRollback(layer(request), request.id, request.destroyMoreRecent === true);
      return { snapshots: [] };
    },
    containerRollbackSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => {
      const target = layer(request);
      await snapshots.rollback(target, request.id, request.destroyMoreRecent === true, ctx.signal);
      const found = await snapshots.get(target, request.id);
      return { snapshots: found ? [wire(found)] : [] };
    },
    /** The layer as a tar, streamed (its size is not known before tar has read it all: chunked). */
    containerDownloadSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotDownload> => ({
      stream: await snapshots.download(layer(request), request.id),
      format: 'tar',
    }),
  };
}
