/**
 * Internal snapshots of the disks of a running QEMU, over QMP. A snapshot of
 * several disks is one `transaction` of `blockdev-snapshot-internal-sync`
 * actions: QEMU drains I/O and takes them all at the same instant, or none.
 * What is captured is each disk's content at that instant (crash-consistent,
 * as after a power cut); memory and device state are not saved.
 */
import { driveId } from './command-line.js';
import { byAge, fromSnapshotInfo, type InternalSnapshot, type SnapshotInfoJson } from './qcow2-snapshots.js';
import type { QmpClient } from './qmp-client.js';

/** Snapshots flush and copy metadata; on a busy host that is slower than an ordinary QMP command. */
const SNAPSHOT_COMMAND_MS = 120_000;

interface BlockInfo {
  device: string;
  inserted?: { image?: { snapshots?: SnapshotInfoJson[] } };
}

/** Takes snapshot `name` of every listed disk device (vda, vdb) at one instant. */
export async function snapshotDrives(qmp: QmpClient, devices: string[], name: string): Promise<void> {
  const actions = devices.map((device) => ({ type: 'blockdev-snapshot-internal-sync', data: { device: driveId(device), name } }));
  await qmp.execute('transaction', { actions }, SNAPSHOT_COMMAND_MS);
}

/** Deletes snapshot `name` (by name, never by id) of one disk device. */
export async function deleteDriveSnapshot(qmp: QmpClient, device: string, name: string): Promise<void> {
  await qmp.execute('blockdev-snapshot-delete-internal-sync', { device: driveId(device), name }, SNAPSHOT_COMMAND_MS);
}

/** Each disk device's snapshots, oldest first, as the running QEMU sees them. */
export async function listDriveSnapshots(qmp: QmpClient, devices: string[]): Promise<Map<string, InternalSnapshot[]>> {
  const blocks = await qmp.execute<BlockInfo[]>('query-block');
  const byDrive = new Map(blocks.map((b) => [b.device, b]));
  const result = new Map<string, InternalSnapshot[]>();
  for (const device of devices) {
    const block = byDrive.get(driveId(device));
    if (!block?.inserted) throw new Error(`the running QEMU has no disk ${device} (drive ${driveId(device)}); was it started by an older agent?`);
    result.set(device, (block.inserted.image?.snapshots ?? []).map(fromSnapshotInfo).sort(byAge));
  }
  return result;
}
