/**
 * Snapshots through libvirt (docs/snapshots.md, "libvirt").
 *
 * Guest-wide snapshots are libvirt domain snapshots (`snapshot-create-as`):
 * internal qcow2 snapshots of every disk, taken by libvirt at one instant,
 * with the memory state when the domain runs (a system checkpoint), so a
 * rollback (`snapshot-revert`) brings the guest back as it was, running if
 * it ran. They are libvirt's own snapshots: `virsh snapshot-list` shows
 * them, and libvirt keeps their metadata.
 *
 * Disk snapshots are internal qcow2 snapshots of one disk's volume made
 * with qemu-img while the domain is off. libvirt's own per-disk snapshots
 * (`--disk-only`) are external: they would add overlay files to the domain
 * and change its XML under hyperkern's volume management. A running
 * guest's disk cannot be snapshot alone (409): take a guest-wide snapshot.
 * A disk's list shows every snapshot in its qcow2 table, guest-wide ones
 * too (a disk rollback may go back to one); a disk-level delete of a
 * guest-wide snapshot is refused, since it would break libvirt's snapshot.
 *
 * Operations on one guest run one at a time (list and download arrive
 * outside the guest's job queue), so a download's convert never races a
 * delete.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import {
  exportQcow2Snapshot,
  PerGuestSerial,
  removeStaleExports,
  SNAPSHOT_CONVERT_MS,
  SNAPSHOT_EXPORT_PREFIX,
  StageRejection,
  type Disk,
  type Guest,
  type Snapshot,
  type SnapshotDownload,
  type SnapshotResponse,
  type SnapshotStageRequest,
  type StageContext,
} from '../../core/contract/index.js';
import { isActive } from './domain-state.js';
import type { Domains } from './domains.js';
import type { VirshShell } from './virsh-shell.js';

const MIB = 1024 * 1024;
/**
 * The kernel allows letters, digits, . _ - starting with a letter or digit;
 * qemu-img also reads an all-digit name as a snapshot id, and a name
 * starting with "-" would reach virsh as an option: both are refused here.
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** One entry of a qcow2 file's snapshot table. */
interface TableEntry {
  id: number;
  name: string;
  vmStateSize: number;
  /** When it was taken, ns since the epoch (as qcow2 stores it). */
  createdNs: bigint;
}

export class LibvirtSnapshots {
  /** One snapshot operation per guest at a time: they share the guest's disk files. */
  private readonly perGuest = new PerGuestSerial();

  constructor(
    private readonly virsh: VirshShell,
    private readonly domains: Domains,
    private readonly options: { qemuImg: string; workDir: string },
  ) {}

  /** Removes exports an agent killed mid-download left. */
  async open(): Promise<void> {
    await mkdir(this.options.workDir, { recursive: true });
    await removeStaleExports(this.options.workDir);
  }

  list(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, () => this.describeAll(request, signal));
  }

  /** The snapshot, or none (the kernel answers 404). */
  get(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, async () => (await this.describeAll(request, signal, request.id)).filter((s) => s.id === request.id));
  }

  /** createSnapshot, sync: what a create would refuse (bad or taken name, one disk of a running guest), answered before the job is queued. */
  checkCreate(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, async () => {
      await this.createPlan(request, signal);
      return [];
    });
  }

  create(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, async () => {
      const { name, domain, disks } = await this.createPlan(request, signal);
      if (request.disk === undefined) {
        // Internal snapshots of every qcow2 disk, with memory when the domain runs; --atomic: all or none.
        await this.virsh.run(['snapshot-create-as', domain, '--name', name, '--atomic'], { timeoutMs: SNAPSHOT_CONVERT_MS });
      } else {
        await qemuImg(this.options.qemuImg, ['snapshot', '-q', '-c', name, sourceOf(disks[0]!)], signal);
      }
      return this.describeAll(request, signal, name);
    });
  }

  delete(request: SnapshotStageRequest, signal?: AbortSignal): Promise<void> {
    const name = checkName(request.id);
    return this.perGuest.run(request.guest.id, async () => {
      const { guest } = request;
      const domain = this.domains.require(guest);
      if (request.disk === undefined) {
        await this.virsh.run(['snapshot-delete', domain, '--snapshotname', name]);
        return;
      }
      const disk = disksOf(guest, request.disk)[0]!;
      if ((await this.domainSnapshots(domain)).includes(name)) {
        throw new StageRejection(409, `snapshot "${name}" of disk ${disk.device} is part of guest ${guest.id}'s guest-wide snapshot; delete that at /guests/${guest.id}/snapshots/${name}`);
      }
      await this.requireOff(guest, domain, 'deleting a snapshot of one disk');
      await qemuImg(this.options.qemuImg, ['snapshot', '-q', '-d', name, sourceOf(disk)], signal);
    });
  }

  /** rollbackSnapshot, sync: the 409s a rollback would give (later snapshots without destroyMoreRecent), before the job is queued. */
  checkRollback(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, async () => {
      await this.rollbackPlan(request, signal);
      return [];
    });
  }

  /**
   * Goes back to the snapshot. Snapshots taken after it are a 409 unless
   * `destroyMoreRecent`, which deletes them once the rollback succeeded.
   */
  rollback(request: SnapshotStageRequest, signal?: AbortSignal): Promise<Snapshot[]> {
    return this.perGuest.run(request.guest.id, async () => {
      const { name, domain, disks, newer } = await this.rollbackPlan(request, signal);
      if (request.disk === undefined) {
        // A checkpoint of a running guest comes back running (memory and all); one of an off guest stays off.
        await this.virsh.run(['snapshot-revert', domain, '--snapshotname', name], { timeoutMs: SNAPSHOT_CONVERT_MS });
        for (const n of newer) await this.virsh.run(['snapshot-delete', domain, '--snapshotname', n]);
      } else {
        const file = sourceOf(disks[0]!);
        await qemuImg(this.options.qemuImg, ['snapshot', '-q', '-a', name, file], signal);
        for (const n of newer) await qemuImg(this.options.qemuImg, ['snapshot', '-q', '-d', n, file], signal);
      }
      return this.describeAll(request, signal, name);
    });
  }

  /**
   * One disk's snapshot as a self-contained qcow2: `qemu-img convert -U -l
   * snapshot.name=...` of its volume (backing image included) into a file
   * that is unlinked as soon as it is open, so it goes when the stream
   * closes, and even if the agent dies. -U: a running domain keeps the
   * volume open; a snapshot's clusters are copy-on-write, so they do not
   * change under the convert.
   */
  download(request: SnapshotStageRequest, signal?: AbortSignal): Promise<SnapshotDownload> {
    const name = checkName(request.id);
    return this.perGuest.run(request.guest.id, async () => {
      const disk = disksOf(request.guest, request.disk)[0]!;
      const table = (await this.tables([disk], signal)).get(disk.device)!;
      if (!table.some((s) => s.name === name)) throw new StageRejection(404, `${describe(request)} has no snapshot "${name}"`);
      await mkdir(this.options.workDir, { recursive: true });
      return exportQcow2Snapshot((args) => qemuImg(this.options.qemuImg, args, signal, SNAPSHOT_CONVERT_MS), sourceOf(disk), name, this.options.workDir);
    });
  }

  // ---- helpers ---------------------------------------------------------------

  private async createPlan(request: SnapshotStageRequest, signal?: AbortSignal): Promise<{ name: string; domain: string; disks: Disk[] }> {
    const name = checkName(request.dest || request.id);
    const { guest } = request;
    const domain = this.domains.require(guest);
    const disks = disksOf(guest, request.disk);
    const tables = await this.tables(disks, signal);
    const taken = disks.filter((d) => tables.get(d.device)!.some((s) => s.name === name)).map((d) => d.device);
    if (taken.length > 0 || (await this.domainSnapshots(domain)).includes(name)) {
      throw new StageRejection(409, `guest ${guest.id}: ${taken.length > 0 ? `disk ${taken.join(', ')} already has` : 'libvirt already has'} a snapshot "${name}"`);
    }
    if (request.disk !== undefined) await this.requireOff(guest, domain, 'a snapshot of one disk');
    return { name, domain, disks };
  }

  /** What a rollback goes back to and what it deletes, or the 404/409 it gives. */
  private async rollbackPlan(request: SnapshotStageRequest, signal?: AbortSignal): Promise<{ name: string; domain: string; disks: Disk[]; newer: string[] }> {
    const name = checkName(request.id);
    const { guest } = request;
    const domain = this.domains.require(guest);
    await this.requireOff(guest, domain, 'a rollback');
    const disks = disksOf(guest, request.disk);
    const tables = await this.tables(disks, signal);
    const guestWide = await this.domainSnapshots(domain);
    const table = tables.get(disks[0]!.device)!;
    const point = table.find((s) => s.name === name);
    if (!point || (request.disk === undefined && !guestWide.includes(name))) throw new StageRejection(404, `${describe(request)} has no snapshot "${name}"`);
    const candidates = request.disk === undefined ? guestWide : table.map((s) => s.name);
    const newer = candidates.filter((n) => n !== name && isNewer(table.find((s) => s.name === n), point));
    if (newer.length > 0 && !request.destroyMoreRecent) {
      throw new StageRejection(409, `${describe(request)} has snapshots taken after "${name}" (${newer.join(', ')}); roll back with destroyMoreRecent to delete them, or delete them first`);
    }
    const partOfGuest = request.disk === undefined ? [] : newer.filter((n) => guestWide.includes(n));
    if (partOfGuest.length > 0) {
      throw new StageRejection(409, `disk ${request.disk}: the later snapshots ${partOfGuest.join(', ')} are guest-wide; roll back the whole guest, or delete them at /guests/${guest.id}/snapshots first`);
    }
    return { name, domain, disks, newer };
  }

  /** Guest-wide: libvirt's snapshots of the domain; disk: that disk's qcow2 table. Oldest first. */
  private async describeAll(request: SnapshotStageRequest, signal?: AbortSignal, only?: string): Promise<Snapshot[]> {
    const disks = disksOf(request.guest, request.disk);
    const tables = await this.tables(disks, signal);
    const first = tables.get(disks[0]!.device)!;
    let names: string[];
    if (request.disk === undefined) {
      const guestWide = new Set(await this.domainSnapshots(this.domains.require(request.guest)));
      names = [...first.map((s) => s.name).filter((n) => guestWide.has(n)), ...[...guestWide].filter((n) => !first.some((s) => s.name === n))];
    } else {
      names = first.map((s) => s.name);
    }
    const out: Snapshot[] = [];
    for (const name of names) {
      if (only !== undefined && name !== only) continue;
      let bytes = 0;
      for (const disk of disks) {
        if (tables.get(disk.device)!.some((s) => s.name === name)) bytes += await measure(this.options.qemuImg, sourceOf(disk), name, signal);
      }
      out.push({ id: name, size: Math.ceil(bytes / MIB) });
    }
    return out;
  }

  /** Names of libvirt's snapshots of the domain. */
  private async domainSnapshots(domain: string): Promise<string[]> {
    return (await this.virsh.run(['snapshot-list', domain, '--name'], { readOnly: true }))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** Each disk's qcow2 snapshot table, oldest first (-U: readable while the domain runs). */
  private async tables(disks: Disk[], signal?: AbortSignal): Promise<Map<string, TableEntry[]>> {
    const tables = new Map<string, TableEntry[]>();
    for (const disk of disks) {
      const info = JSON.parse(await qemuImg(this.options.qemuImg, ['info', '--output=json', '-U', sourceOf(disk)], signal)) as {
        snapshots?: { id: string; name: string; 'vm-state-size'?: number; 'date-sec': number; 'date-nsec'?: number }[];
      };
      const entries = (info.snapshots ?? []).map((s) => ({
        id: Number(s.id),
        name: s.name,
        vmStateSize: s['vm-state-size'] ?? 0,
        createdNs: BigInt(s['date-sec']) * 1_000_000_000n + BigInt(s['date-nsec'] ?? 0),
      }));
      tables.set(disk.device, entries.sort((a, b) => (a.createdNs === b.createdNs ? a.id - b.id : a.createdNs < b.createdNs ? -1 : 1)));
    }
    return tables;
  }

  /** qemu-img writes need the volume closed, and a rollback must not change disks under a running OS. */
  private async requireOff(guest: Guest, domain: string, what: string): Promise<void> {
    const state = await this.domains.mustExist(guest, domain);
    if (isActive(state)) {
      throw new StageRejection(409, `guest ${guest.id} is running (libvirt: ${state.state}); ${what} needs it off${what.includes('one disk') ? ' (a running guest takes guest-wide snapshots)' : ''}`);
    }
  }

}

function checkName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) throw new StageRejection(400, `snapshot name "${name.slice(0, 100)}" must be 1-80 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  if (/^[0-9]+$/.test(name)) throw new StageRejection(400, `snapshot name "${name}" must not be all digits (qcow2 would read it as a snapshot id)`);
  return name;
}

function disksOf(guest: Guest, device: string | undefined): Disk[] {
  if (device === undefined) {
    if (guest.disks.length === 0) throw new StageRejection(400, `guest ${guest.id} has no disks to snapshot`);
    return guest.disks;
  }
  const disk = guest.disks.find((d) => d.device === device);
  if (!disk) throw new StageRejection(404, `guest ${guest.id} has no disk ${device}`);
  return [disk];
}

function sourceOf(disk: Disk): string {
  if (!disk.source) throw new Error(`disk ${disk.device} has no volume path; was the guest created by the libvirt plugin?`);
  return disk.source;
}

function describe(request: SnapshotStageRequest): string {
  return request.disk === undefined ? `guest ${request.guest.id}` : `disk ${request.disk} of guest ${request.guest.id}`;
}

function isNewer(entry: TableEntry | undefined, point: TableEntry): boolean {
  if (!entry) return false;
  return entry.createdNs > point.createdNs || (entry.createdNs === point.createdNs && entry.id > point.id);
}

/** Bytes a self-contained qcow2 of the snapshot needs (what a download of it is). */
async function measure(qemuImgBinary: string, file: string, name: string, signal?: AbortSignal): Promise<number> {
  const out = await qemuImg(qemuImgBinary, ['measure', '--output=json', '-U', '-O', 'qcow2', '-l', `snapshot.name=${name}`, file], signal);
  return (JSON.parse(out) as { required: number }).required;
}

function qemuImg(binary: string, args: string[], signal?: AbortSignal, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { signal, timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 * MIB }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(`${binary} not found; install qemu-utils`));
      // qemu-img names the files it read and wrote; host paths never leave the server.
      let detail = (stderr || error.message).trim();
      for (const arg of args) if (arg.startsWith('/')) detail = detail.split(arg).join(arg.includes(SNAPSHOT_EXPORT_PREFIX) ? 'the export file' : 'the disk volume');
      reject(new Error(`qemu-img ${args[0]} failed: ${detail}`));
    });
  });
}

/** The stage handlers, one per snapshot action; the manifest makes them stages. */
export function snapshotHandlers(snapshots: LibvirtSnapshots) {
  return {
    checkCreate: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.checkCreate(request, ctx.signal) }),
    create: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.create(request, ctx.signal) }),
    checkRollback: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.checkRollback(request, ctx.signal) }),
    list: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.list(request, ctx.signal) }),
    get: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.get(request, ctx.signal) }),
    delete: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => {
      await snapshots.delete(request, ctx.signal);
      return { snapshots: [] };
    },
    rollback: async (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotResponse> => ({ snapshots: await snapshots.rollback(request, ctx.signal) }),
    download: (request: SnapshotStageRequest, ctx: StageContext): Promise<SnapshotDownload> => snapshots.download(request, ctx.signal),
  };
}
