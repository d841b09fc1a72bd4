/**
 * Snapshots of a QEMU guest's disks: of one disk, or of the whole guest (the
 * same name on every disk, taken at one instant). They are qcow2 internal
 * snapshots inside the disk files, so the run dir holds everything.
 *
 * Running (or paused) guest: QMP on its QEMU (live-snapshots.ts), disk state
 * only, crash-consistent. Off guest: qemu-img on the files (qcow2-snapshots.ts).
 * Rollback needs the guest off: swapping the disks under a running kernel
 * would corrupt its filesystems, and no memory state is saved to go back to.
 *
 * Operations on one guest run one at a time (list and download can arrive
 * outside the guest's job queue), so a delete never races a download's
 * convert and a guest-wide create is never half-seen.
 */
import { exportQcow2Snapshot, PerGuestSerial, SNAPSHOT_CONVERT_MS, StageRejection, type Disk, type Guest, type SnapshotDownload } from '../../core/contract/index.js';
import { deleteDriveSnapshot, listDriveSnapshots, snapshotDrives } from './live-snapshots.js';
import type { Machine } from './machine.js';
import {
  applyFileSnapshot,
  byAge,
  createFileSnapshot,
  deleteFileSnapshot,
  listFileSnapshots,
  measureSnapshot,
  type InternalSnapshot,
} from './qcow2-snapshots.js';
import { run } from './exec.js';
import { checkSnapshotName } from './snapshot-names.js';

/** A guest, and one of its disks (device name, e.g. vda) or none for the whole guest. */
export interface SnapshotTarget {
  guest: Guest;
  disk?: string;
}

export interface QemuSnapshot {
  name: string;
  /** Disk devices that hold it. */
  disks: string[];
  /** When it was taken (the earliest of its disks), ms since the epoch. */
  createdMs: number;
  /** Bytes a self-contained qcow2 of it needs, summed over its disks (what downloads are). */
  sizeBytes: number;
  /** True when QEMU saved memory state with it (only snapshots made outside hyperkern, e.g. savevm). */
  vmState: boolean;
}

export class GuestSnapshots {
  /** One snapshot operation per guest at a time: they share the guest's disk files. */
  private readonly perGuest = new PerGuestSerial();

  constructor(
    private readonly qemuImg: string,
    /** The attached QEMU of a guest, when it runs. */
    private readonly machineOf: (guestId: string) => Machine | undefined,
  ) {}

  /** Snapshots of the target, oldest first. */
  list(target: SnapshotTarget, signal?: AbortSignal): Promise<QemuSnapshot[]> {
    return this.perGuest.run(target.guest.id, async () => {
      const disks = this.disksOf(target);
      return this.describe(disks, await this.tables(target.guest, disks), signal);
    });
  }

  get(target: SnapshotTarget, name: string, signal?: AbortSignal): Promise<QemuSnapshot> {
    return this.perGuest.run(target.guest.id, async () => {
      const disks = this.disksOf(target);
      const tables = await this.tables(target.guest, disks);
      this.requireOn(target, tables, name);
      const [snapshot] = await this.describe(disks, tables, signal, name);
      return snapshot!;
    });
  }

  /** Takes snapshot `name` of the target's disks, all at one instant when the guest runs. */
  async create(target: SnapshotTarget, name: string, signal?: AbortSignal): Promise<QemuSnapshot> {
    checkSnapshotName(name);
    return this.perGuest.run(target.guest.id, async () => {
      const disks = this.disksOf(target);
      const tables = await this.tables(target.guest, disks);
      const taken = disks.filter((d) => tables.get(d.device)!.some((s) => s.name === name));
      if (taken.length > 0) {
        throw new StageRejection(409, `guest ${target.guest.id}: disk ${taken.map((d) => d.device).join(', ')} already has a snapshot "${name}"`);
      }
      const machine = this.machineOf(target.guest.id);
      if (machine) {
        await snapshotDrives(machine.qmp, disks.map((d) => d.device), name);
      } else {
        const done: Disk[] = [];
        try {
          for (const disk of disks) {
            await createFileSnapshot(this.qemuImg, sourceOf(disk), name, signal);
            done.push(disk);
          }
        } catch (error) {
          // All disks or none: undo the ones already taken.
          for (const disk of done) await deleteFileSnapshot(this.qemuImg, sourceOf(disk), name).catch(() => {});
          throw error;
        }
      }
      const [snapshot] = await this.describe(disks, await this.tables(target.guest, disks), signal, name);
      return snapshot!;
    });
  }

  delete(target: SnapshotTarget, name: string, signal?: AbortSignal): Promise<void> {
    return this.perGuest.run(target.guest.id, async () => {
      const disks = this.disksOf(target);
      this.requireOn(target, await this.tables(target.guest, disks), name);
      await this.deleteFrom(target.guest, disks, [name], signal);
    });
  }

  /**
   * Reverts the target's disks to snapshot `name`; the guest must be off.
   * With snapshots taken after it, this is a 409 that changes nothing unless
   * `destroyMoreRecent`, which deletes them (as ZFS rollback -r does, which
   * mistify's clients expect). Answers the names deleted.
   */
  rollback(target: SnapshotTarget, name: string, options: { destroyMoreRecent: boolean }, signal?: AbortSignal): Promise<string[]> {
    return this.perGuest.run(target.guest.id, async () => {
      if (this.machineOf(target.guest.id)) {
        throw new StageRejection(
          409,
          `guest ${target.guest.id} is running; power it off before rolling back (its disks cannot change under a running OS, and QEMU snapshots here hold no memory state)`,
        );
      }
      const disks = this.disksOf(target);
      const tables = await this.tables(target.guest, disks);
      this.requireOn(target, tables, name);
      const newer = this.refuseLater(target, tables, name, options.destroyMoreRecent);
      const rolledBack: string[] = [];
      for (const disk of disks) {
        try {
          await applyFileSnapshot(this.qemuImg, sourceOf(disk), name, signal);
        } catch (error) {
          if (rolledBack.length === 0) throw error;
          throw new Error(`rollback to "${name}" reverted disk ${rolledBack.join(', ')} but failed on ${disk.device}: ${(error as Error).message}`);
        }
        rolledBack.push(disk.device);
      }
      // Deleted after the rollback succeeded, so a failed rollback loses none.
      await this.deleteFrom(target.guest, disks, [...newer], signal);
      return [...newer];
    });
  }

  /**
   * The check of a rollback that can be made before its job is queued: the
   * 409 for later snapshots without destroyMoreRecent (rollback checks again).
   */
  checkRollback(target: SnapshotTarget, name: string, options: { destroyMoreRecent: boolean }): Promise<void> {
    return this.perGuest.run(target.guest.id, async () => {
      const tables = await this.tables(target.guest, this.disksOf(target));
      this.requireOn(target, tables, name);
      this.refuseLater(target, tables, name, options.destroyMoreRecent);
    });
  }

  /**
   * A self-contained qcow2 of the snapshot of one disk, streamed. A guest-wide
   * download is of the guest's only disk; with several, a 409 names the disk routes.
   */
  download(target: SnapshotTarget, name: string, workDir: string, signal?: AbortSignal): Promise<Required<SnapshotDownload>> {
    return this.perGuest.run(target.guest.id, async () => {
      const disks = this.disksOf(target);
      if (disks.length !== 1) {
        const devices = disks.map((d) => d.device);
        throw new StageRejection(
          409,
          `guest ${target.guest.id} has ${disks.length} disks (${devices.join(', ')}); download one disk's snapshot at /guests/${target.guest.id}/disks/{disk}/snapshots/${name}/download`,
        );
      }
      this.requireOn(target, await this.tables(target.guest, disks), name);
      return exportQcow2Snapshot((args) => run(this.qemuImg, args, { signal, timeoutMs: SNAPSHOT_CONVERT_MS }), sourceOf(disks[0]!), name, workDir);
    });
  }

  // ---- helpers ---------------------------------------------------------------

  private disksOf({ guest, disk }: SnapshotTarget): Disk[] {
    if (disk === undefined || disk === '') {
      if (guest.disks.length === 0) throw new StageRejection(400, `guest ${guest.id} has no disks to snapshot`);
      return guest.disks;
    }
    const found = guest.disks.find((d) => d.device === disk);
    if (!found) throw new StageRejection(404, `guest ${guest.id} has no disk ${disk} (disks: ${guest.disks.map((d) => d.device).join(', ') || 'none'})`);
    return [found];
  }

  /** Each disk's snapshot table: from QEMU when it runs, else from the files. */
  private async tables(guest: Guest, disks: Disk[]): Promise<Map<string, InternalSnapshot[]>> {
    const machine = this.machineOf(guest.id);
    if (machine) return listDriveSnapshots(machine.qmp, disks.map((d) => d.device));
    const tables = new Map<string, InternalSnapshot[]>();
    for (const disk of disks) tables.set(disk.device, await listFileSnapshots(this.qemuImg, sourceOf(disk)));
    return tables;
  }

  /** Names of the snapshots taken after `name` on the target's disks; a 409 if there are some and they may not go. */
  private refuseLater(target: SnapshotTarget, tables: Map<string, InternalSnapshot[]>, name: string, destroyMoreRecent: boolean): string[] {
    const newer = new Set<string>();
    for (const table of tables.values()) {
      const point = table.find((s) => s.name === name)!;
      for (const s of table) if (byAge(s, point) > 0) newer.add(s.name);
    }
    if (newer.size > 0 && !destroyMoreRecent) {
      const where = target.disk ? `disk ${target.disk} of guest ${target.guest.id}` : `guest ${target.guest.id}`;
      throw new StageRejection(409, `snapshot "${name}" of ${where} has later snapshots (${[...newer].join(', ')}); roll back with destroyMoreRecent to delete them, or delete them first`);
    }
    return [...newer];
  }

  private requireOn(target: SnapshotTarget, tables: Map<string, InternalSnapshot[]>, name: string): void {
    const missing = [...tables].filter(([, table]) => !table.some((s) => s.name === name)).map(([device]) => device);
    if (missing.length === 0) return;
    const where = target.disk ? `disk ${target.disk} of guest ${target.guest.id}` : `guest ${target.guest.id}`;
    const partly = target.disk || missing.length === tables.size ? '' : ` (disk ${missing.join(', ')} lacks it: it is a snapshot of single disks, see their disk routes)`;
    throw new StageRejection(404, `${where} has no snapshot "${name}"${partly}`);
  }

  /** The snapshots every one of `disks` has (a guest snapshot is on all its disks), oldest first. */
  private async describe(disks: Disk[], tables: Map<string, InternalSnapshot[]>, signal?: AbortSignal, only?: string): Promise<QemuSnapshot[]> {
    const first = tables.get(disks[0]!.device)!;
    const names = first.map((s) => s.name).filter((n) => (only === undefined || n === only) && disks.every((d) => tables.get(d.device)!.some((s) => s.name === n)));
    const result: QemuSnapshot[] = [];
    for (const name of names) {
      const parts = disks.map((d) => tables.get(d.device)!.find((s) => s.name === name)!);
      let sizeBytes = 0;
      for (const disk of disks) sizeBytes += await measureSnapshot(this.qemuImg, sourceOf(disk), name, signal);
      result.push({
        name,
        disks: disks.map((d) => d.device),
        createdMs: Math.min(...parts.map((p) => p.createdMs)),
        sizeBytes,
        vmState: parts.some((p) => p.vmStateSize > 0),
      });
    }
    return result;
  }

  private async deleteFrom(guest: Guest, disks: Disk[], names: string[], signal?: AbortSignal): Promise<void> {
    const tables = await this.tables(guest, disks);
    for (const name of names) {
      for (const disk of disks) {
        if (!tables.get(disk.device)!.some((s) => s.name === name)) continue;
        const machine = this.machineOf(guest.id);
        if (machine) await deleteDriveSnapshot(machine.qmp, disk.device, name);
        else await deleteFileSnapshot(this.qemuImg, sourceOf(disk), name, signal);
      }
    }
  }

}

function sourceOf(disk: Disk): string {
  if (!disk.source) throw new Error(`disk ${disk.device} has no source file; was the guest created by the QEMU plugin?`);
  return disk.source;
}
