/**
 * hyperkern's snapshot stage requests as mistify-agent sent them to
 * mistify-agent-image (ImageStore.CreateSnapshot, ListSnapshots, ...), and
 * the answers back. mistify named what a snapshot is of by a ZFS-style
 * entity id: `guests/GUEST` for a guest (its datasets recursively),
 * `guests/GUEST/disk-N` for its Nth disk, `@NAME` appended for one
 * snapshot; the sub-agent answers snapshots by their full dataset names
 * (`pool/guests/GUEST/disk-0@NAME`), which become plain names here.
 */
import type { Snapshot, SnapshotRequest, SnapshotResponse, SnapshotStageRequest } from '../../core/contract/index.js';

/** `guests/GUEST`, or `guests/GUEST/disk-N` for the disk with that device name. */
export function entityOf(request: SnapshotStageRequest, disk = request.disk): string {
  const guest = `guests/${request.guest.id}`;
  if (disk === undefined) return guest;
  const index = request.guest.disks.findIndex((d) => d.device === disk);
  return `${guest}/disk-${index < 0 ? disk : index}`;
}

/** The datasets a guest-wide snapshot is on: the guest's, then each disk's. */
export function datasetsOf(request: SnapshotStageRequest): string[] {
  if (request.disk !== undefined) return [entityOf(request)];
  return [entityOf(request), ...request.guest.disks.map((d) => entityOf(request, d.device))];
}

/**
 * mistify's SnapshotRequest for a stage request: a create names the entity
 * and `dest`; a list the entity; the rest one snapshot, `entity@name`.
 */
export function toMistifySnapshotRequest(request: SnapshotStageRequest, entity = entityOf(request)): SnapshotRequest {
  const creating = request.dest !== '';
  const one = !creating && request.id !== '';
  return {
    id: one ? `${entity}@${request.id}` : entity,
    dest: request.dest,
    recursive: request.disk === undefined,
    destroyMoreRecent: request.destroyMoreRecent,
  };
}

/**
 * The sub-agent's SnapshotResponse as hyperkern's: plain names, only the
 * snapshots of the entity asked about (a recursive list also holds every
 * disk's), a guest-wide one's size the sum over the guest's datasets.
 */
export function fromMistifySnapshots(request: SnapshotStageRequest, response: SnapshotResponse): SnapshotResponse {
  const entity = entityOf(request);
  const parsed = (response.snapshots ?? []).map((s) => {
    const at = s.id.lastIndexOf('@');
    return at < 0 ? { dataset: entity, name: s.id, size: s.size } : { dataset: s.id.slice(0, at), name: s.id.slice(at + 1), size: s.size };
  });
  const isEntity = (dataset: string) => dataset === entity || dataset.endsWith(`/${entity}`);
  const under = (dataset: string) => isEntity(dataset) || dataset.includes(`/${entity}/`) || dataset.startsWith(`${entity}/`);
  const snapshots: Snapshot[] = [];
  for (const s of parsed) {
    if (!isEntity(s.dataset) || snapshots.some((o) => o.id === s.name)) continue;
    const size = request.disk === undefined ? parsed.filter((o) => o.name === s.name && under(o.dataset)).reduce((sum, o) => sum + o.size, 0) : s.size;
    snapshots.push({ id: s.name, size });
  }
  return { snapshots };
}
