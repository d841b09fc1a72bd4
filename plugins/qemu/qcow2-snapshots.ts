/**
 * Internal snapshots of one qcow2 file that no QEMU has open, through
 * qemu-img: list (`info`), create (`snapshot -c`), apply (`snapshot -a`),
 * delete (`snapshot -d`). A snapshot lives inside the disk file itself, so
 * it goes wherever the disk goes and is removed with it.
 */
import { run } from './exec.js';

/** One internal snapshot as qemu-img and QMP report it (SnapshotInfo). */
export interface InternalSnapshot {
  /** qcow2's own numeric id ("1", "2", ...), unique within the file. */
  id: string;
  name: string;
  /** Bytes of saved VM (memory/device) state; 0 for a disk-only snapshot. */
  vmStateSize: number;
  /** When it was taken, in ms since the epoch (QEMU stores seconds + nanoseconds). */
  createdMs: number;
}

/** SnapshotInfo as JSON from `qemu-img info --output=json` and QMP `query-block`. */
export interface SnapshotInfoJson {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
}

export function fromSnapshotInfo(info: SnapshotInfoJson): InternalSnapshot {
  return { id: String(info.id), name: info.name, vmStateSize: info['vm-state-size'] ?? 0, createdMs: info['date-sec'] * 1000 + Math.floor((info['date-nsec'] ?? 0) / 1e6) };
}

/** Oldest first. qcow2 ids grow with every snapshot, so they break ties of the same millisecond. */
export function byAge(a: InternalSnapshot, b: InternalSnapshot): number {
  return a.createdMs - b.createdMs || Number(a.id) - Number(b.id);
}

/**
 * The file's snapshots, oldest first. -U (force share) lets this read a disk
 * a QEMU has open too; the snapshot table is only rewritten as a whole.
 */
export async function listFileSnapshots(qemuImg: string, file: string, signal?: AbortSignal): Promise<InternalSnapshot[]> {
  const { stdout } = await run(qemuImg, ['info', '--output=json', '-U', file], { signal });
  const info = JSON.parse(stdout) as { snapshots?: SnapshotInfoJson[] };
  return (info.snapshots ?? []).map(fromSnapshotInfo).sort(byAge);
}

/** Bytes a self-contained qcow2 of the snapshot needs (what a download of it is), from `qemu-img measure`. */
export async function measureSnapshot(qemuImg: string, file: string, name: string, signal?: AbortSignal): Promise<number> {
  const { stdout } = await run(qemuImg, ['measure', '--output=json', '-U', '-O', 'qcow2', '-l', `snapshot.name=${name}`, file], { signal });
  return (JSON.parse(stdout) as { required: number }).required;
}

// The writes below need the disk closed: qemu-img takes the image's write
// lock, so a QEMU that started meanwhile makes them fail rather than corrupt it.

export async function createFileSnapshot(qemuImg: string, file: string, name: string, signal?: AbortSignal): Promise<void> {
  await run(qemuImg, ['snapshot', '-q', '-c', name, file], { signal });
}

/** Reverts the disk's current state to the snapshot (the snapshot stays). */
export async function applyFileSnapshot(qemuImg: string, file: string, name: string, signal?: AbortSignal): Promise<void> {
  await run(qemuImg, ['snapshot', '-q', '-a', name, file], { signal });
}

export async function deleteFileSnapshot(qemuImg: string, file: string, name: string, signal?: AbortSignal): Promise<void> {
  await run(qemuImg, ['snapshot', '-q', '-d', name, file], { signal });
}
