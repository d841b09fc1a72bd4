/**
 * The QEMU backend's snapshot stages (docs/snapshots.md, "Snapshot stage
 * contract"): SnapshotStageRequests in, mistify's Snapshot `{id, size}` out,
 * on top of GuestSnapshots. The kernel has checked guest, disk, state, name
 * and existence; these check what only QEMU knows (a later snapshot blocking
 * a rollback, a name qcow2 would read as an id) and do the work.
 */
import type { Snapshot, SnapshotDownload, SnapshotResponse, SnapshotStageRequest, StageContext } from '../../core/contract/index.js';
import type { GuestSnapshots, QemuSnapshot, SnapshotTarget } from './guest-snapshots.js';
import { checkSnapshotName } from './snapshot-names.js';

const MIB = 1024 * 1024;

function wire(snapshot: QemuSnapshot): Snapshot {
  return { id: snapshot.name, size: Math.ceil(snapshot.sizeBytes / MIB) };
}

const targetOf = (request: SnapshotStageRequest): SnapshotTarget => ({ guest: request.guest, disk: request.disk || undefined });
/** A create names the new snapshot in `dest`; the kernel copies it into `id`. */
const newName = (request: SnapshotStageRequest) => request.dest || request.id;

export function snapshotHandlers(snapshots: GuestSnapshots, workDirOf: (guestId: string) => string) {
  // Measures only this snapshot (qemu-img measure per snapshot makes a whole
  // list costly); a missing one is the 404 the kernel reads as "none".
  const one = async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({
    snapshots: [wire(await snapshots.get(targetOf(request), request.id, ctx.signal))],
  });
  return {
    /** Sync: what qcow2 refuses, before the job is queued. */
    checkCreateSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => {
      checkSnapshotName(newName(request));
      return { snapshots: [] };
    },
    createSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({
      snapshots: [wire(await snapshots.create(targetOf(request), newName(request), ctx.signal))],
    }),
    listSnapshots: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({
      snapshots: (await snapshots.list(targetOf(request), ctx.signal)).map(wire),
    }),
    getSnapshot: one,
    deleteSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => {
      await snapshots.delete(targetOf(request), request.id, ctx.signal);
      return { snapshots: [] };
    },
    /** Sync: the 409 for later snapshots without destroyMoreRecent, before the job is queued. */
    checkRollbackSnapshot: async (request: SnapshotStageRequest): Promise<SnapshotResponse> => {
      await snapshots.checkRollback(targetOf(request), request.id, { destroyMoreRecent: request.destroyMoreRecent === true });
      return { snapshots: [] };
    },
    rollbackSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => {
      await snapshots.rollback(targetOf(request), request.id, { destroyMoreRecent: request.destroyMoreRecent === true }, ctx.signal);
      return one(request, ctx);
    },
    downloadSnapshot: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotDownload> =>
      snapshots.download(targetOf(request), request.id, workDirOf(request.guest.id), ctx.signal),
  };
}
