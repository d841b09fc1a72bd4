/**
 * In-memory snapshots of simulated disks. A disk snapshot records what the
 * disk held (SimulatedMachine.diskContent); a guest-wide snapshot named N is
 * a snapshot N of every disk taken at one instant, so the guest-wide list
 * shows the names every disk has. Rollback puts that content back, so what
 * was "written" since is gone: a snapshot taken after a rollback downloads
 * byte for byte as the one rolled back to. Like the rest of the simulator,
 * snapshots live as long as the agent process.
 */
import { Readable } from 'node:stream';
import { StageRejection, type Guest, type Snapshot } from '../../core/contract/index.js';
import type { SimulatedMachine } from './simulated-machine.js';

interface DiskSnapshot {
  name: string;
  /** The disk's content when it was taken. */
  content: number;
  /** MiB: the simulated guest writes 100 KiB per running second. */
  size: number;
}

const WRITTEN_MIB_PER_SECOND = 100 / 1024;

export interface DownloadShape {
  /** Bytes of the simulated image. */
  bytes: number;
  /** Leave Content-Length out (a backend that cannot tell the size in advance). */
  chunked: boolean;
  /** Fail the stream after this many bytes (a backend dying mid-transfer). */
  failAfter?: number;
}

export class SimulatedSnapshots {
  /** Bytes download streams have produced so far (shown on /health: how far a slow client let a download run ahead). */
  bytesRead = 0;
  /** Guest id -> disk device -> its snapshots, oldest first. */
  private readonly byGuest = new Map<string, Map<string, DiskSnapshot[]>>();

  forget(guestId: string): void {
    this.byGuest.delete(guestId);
  }

  create(guest: Guest, machine: SimulatedMachine, disk: string | undefined, name: string): Snapshot {
    const devices = this.devices(guest, disk);
    if (devices.length === 0) throw new StageRejection(409, `guest ${guest.id} has no disks to snapshot`);
    for (const device of devices) {
      if (this.of(guest.id, device).some((s) => s.name === name)) throw new StageRejection(409, `disk ${device} already has a snapshot "${name}"`);
    }
    // One instant for every disk: nothing awaits between these.
    for (const device of devices) {
      const content = machine.diskContent(device);
      this.of(guest.id, device).push({ name, content, size: Math.ceil(content * WRITTEN_MIB_PER_SECOND) });
    }
    return this.list(guest, disk).find((s) => s.id === name)!;
  }

  list(guest: Guest, disk: string | undefined): Snapshot[] {
    const devices = this.devices(guest, disk);
    if (devices.length === 0) return [];
    const [first, ...rest] = devices.map((d) => this.of(guest.id, d));
    return first
      .filter((s) => rest.every((other) => other.some((o) => o.name === s.name)))
      .map((s) => ({ id: s.name, size: [first, ...rest].reduce((sum, list) => sum + list.find((o) => o.name === s.name)!.size, 0) }));
  }

  remove(guest: Guest, disk: string | undefined, name: string): void {
    const devices = this.devicesWith(guest, disk, name);
    for (const device of devices) {
      const list = this.of(guest.id, device);
      list.splice(list.findIndex((s) => s.name === name), 1);
    }
  }

  rollback(guest: Guest, machine: SimulatedMachine, disk: string | undefined, name: string, destroyMoreRecent: boolean): Snapshot {
    const devices = this.devicesWith(guest, disk, name);
    const snapshot = this.list(guest, disk).find((s) => s.id === name)!;
    // Checked on every disk before any changes: a refused rollback changes nothing.
    for (const device of devices) {
      const list = this.of(guest.id, device);
      const later = list.slice(list.findIndex((s) => s.name === name) + 1).map((s) => s.name);
      if (later.length > 0 && !destroyMoreRecent) {
        throw new StageRejection(409, `disk ${device} has snapshots taken after "${name}" (${later.join(', ')}); roll back with destroyMoreRecent to delete them`);
      }
    }
    for (const device of devices) {
      const list = this.of(guest.id, device);
      const at = list.findIndex((s) => s.name === name);
      list.splice(at + 1);
      machine.rollBackDisk(device, list[at].content);
    }
    return snapshot;
  }

  /** The snapshot as a stream of bytes that depend only on what the disk held. */
  download(guest: Guest, disk: string, name: string, shape: DownloadShape): { stream: Readable; size?: number } {
    const snapshot = this.of(guest.id, disk).find((s) => s.name === name);
    if (!snapshot) throw new StageRejection(404, `disk ${disk} has no snapshot "${name}"`);
    const pattern = Buffer.from(`hyperkern simulated disk image; content ${snapshot.content}\n`);
    const chunkSize = 64 * 1024;
    let sent = 0;
    const counter = this;
    const stream = new Readable({
      read() {
        if (shape.failAfter !== undefined && sent >= shape.failAfter) {
          this.destroy(new Error('simulated failure of downloadSnapshot midway'));
          return;
        }
        if (sent >= shape.bytes) {
          this.push(null);
          return;
        }
        const length = Math.min(chunkSize, shape.bytes - sent);
        const chunk = Buffer.alloc(length);
        for (let i = 0; i < length; i++) chunk[i] = pattern[(sent + i) % pattern.length];
        sent += length;
        counter.bytesRead += length;
        this.push(chunk);
      },
    });
    return shape.chunked ? { stream } : { stream, size: shape.bytes };
  }

  private devices(guest: Guest, disk: string | undefined): string[] {
    return disk === undefined ? guest.disks.map((d) => d.device) : [disk];
  }

  /** The disks the snapshot is on; a 404 when it is on none of those asked for. */
  private devicesWith(guest: Guest, disk: string | undefined, name: string): string[] {
    const devices = this.devices(guest, disk);
    const have = devices.filter((d) => this.of(guest.id, d).some((s) => s.name === name));
    if (have.length === 0 || (disk === undefined && have.length !== devices.length)) {
      throw new StageRejection(404, `${disk === undefined ? `guest ${guest.id}` : `disk ${disk}`} has no snapshot "${name}"`);
    }
    return have;
  }

  private of(guestId: string, device: string): DiskSnapshot[] {
    let disks = this.byGuest.get(guestId);
    if (!disks) this.byGuest.set(guestId, (disks = new Map()));
    let list = disks.get(device);
    if (!list) disks.set(device, (list = []));
    return list;
  }
}
