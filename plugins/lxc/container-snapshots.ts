/**
 * Snapshots of a container's layer: the overlayfs upper dir that holds
 * everything the container changed over its read-only image (its root is
 * `overlay:BASE:UPPER`), copied whole into a folder of its own.
 *
 * - Create: a stopped container's layer is copied as it is; a running one is
 *   frozen (its cgroup freezer), copied, thawed, so the copy is of one
 *   instant (what a power cut would leave: files its processes had not
 *   written out are not in it). A suspended (frozen) one is copied and left
 *   frozen. The copy is `cp -a --reflink=auto`: on a filesystem with
 *   reflinks (XFS, btrfs) it shares the data blocks and costs metadata only;
 *   elsewhere (ext4) it copies every byte the container wrote (never the
 *   image's: the base is not part of the layer), and a running container
 *   stays frozen for that long.
 * - Rollback (the container stopped): the snapshot is copied beside the
 *   layer and swapped in by two renames; the old layer is removed after.
 * - Delete: the folder is renamed away, then removed.
 * - Download: the layer as a tar stream (`tar` on the snapshot folder),
 *   overlayfs' own marks included (a deleted image file is a 0/0 character
 *   device, an opaque folder has `trusted.overlay.opaque`).
 *
 * Each snapshot is `SNAPSHOTS/NAME/layer` plus `SNAPSHOTS/NAME/snapshot.json`
 * (when it was taken and what it holds); a copy in progress is a dot-folder,
 * so a crash never leaves a half snapshot under a name, and the next listing
 * sweeps it. What a crash of the agent leaves (a container frozen by a
 * snapshot, a half copy, a rollback between its renames) is put right at
 * the agent's next start (container-snapshots-recovery.ts). SNAPSHOTS is in the container's folder: gone with the container.
 * Operations on one container run one at a time (list and download arrive
 * outside its job queue).
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { PerGuestSerial, StageRejection } from '../../core/contract/index.js';
import { freezerOf, type Freezer } from './container-snapshots-freezer.js';
import { clearSnapshotFreeze, markSnapshotFreeze, recoverLayer, restoreLayer, type LayerRecovery } from './container-snapshots-recovery.js';
import { runTool, withoutPaths } from './container-snapshots-tools.js';

/** Where one container's layer and snapshots are, and whether it runs. */
export interface ContainerLayer {
  /** The guest id, for messages. */
  guestId: string;
  /** The overlayfs upper dir: the container's changes over its image. */
  upperDir: string;
  /** The folder its snapshots go in (inside the container's own folder). */
  snapshotsDir: string;
  /** The file saying a snapshot froze the container (container-snapshots-recovery.ts): in its folder, not among the snapshots. */
  freezeMarker: string;
  /** PID of the container's init while it runs; undefined when it is stopped. */
  initPid(): Promise<number | undefined>;
}

export interface LayerSnapshot {
  name: string;
  /** When it was taken, ms since the epoch. */
  createdMs: number;
  /** Bytes its copy takes on disk (du): what it costs the host. */
  bytes: number;
}

/** What snapshot.json holds. */
interface SnapshotRecord {
  createdMs: number;
  bytes: number;
}

export interface SnapshotTools {
  cp: string;
  du: string;
  tar: string;
}

/** Snapshot names: the kernel's rule (core/jobs/snapshot-runner.ts), checked again here as they become folder names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;
const RECORD = 'snapshot.json';
const LAYER = 'layer';

export function checkLayerSnapshotName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) {
    throw new StageRejection(400, `"${name.slice(0, 100)}" is not a snapshot name; use 1 to 80 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return name;
}

export class ContainerSnapshots {
  private readonly perGuest = new PerGuestSerial();

  constructor(private readonly tools: SnapshotTools) {}

  /** The container's snapshots, oldest first. */
  list(layer: ContainerLayer): Promise<LayerSnapshot[]> {
    return this.perGuest.run(layer.guestId, () => this.read(layer));
  }

  /** The snapshot, or undefined. */
  async get(layer: ContainerLayer, name: string): Promise<LayerSnapshot | undefined> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => (await this.read(layer)).find((s) => s.name === name));
  }

  /** Copies the layer into snapshot `name`: frozen for the copy while the container runs. */
  async create(layer: ContainerLayer, name: string, signal?: AbortSignal): Promise<LayerSnapshot> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => {
      if ((await this.read(layer)).some((s) => s.name === name)) throw new StageRejection(409, `guest ${layer.guestId} already has a snapshot "${name}"`);
      await mkdir(layer.snapshotsDir, { recursive: true });
      const partial = path.join(layer.snapshotsDir, `.partial-${randomBytes(6).toString('hex')}`);
      await mkdir(partial);
      try {
        const createdMs = Date.now();
        await this.copyLayer(layer, path.join(partial, LAYER), signal);
        const bytes = await this.diskBytes(path.join(partial, LAYER), signal);
        await writeFile(path.join(partial, RECORD), JSON.stringify({ createdMs, bytes } satisfies SnapshotRecord));
        await rename(partial, path.join(layer.snapshotsDir, name));
        return { name, createdMs, bytes };
      } catch (error) {
        await rm(partial, { recursive: true, force: true });
        throw error;
      }
    });
  }

  async delete(layer: ContainerLayer, name: string): Promise<void> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => {
      this.require(layer, await this.read(layer), name);
      await this.remove(layer, [name]);
    });
  }

  /**
   * The 409 of a rollback that can be given before its job is queued:
   * snapshots taken after `name` without destroyMoreRecent (rollback checks again).
   */
  async checkRollback(layer: ContainerLayer, name: string, destroyMoreRecent: boolean): Promise<void> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => {
      this.later(layer, await this.read(layer), name, destroyMoreRecent);
    });
  }

  /**
   * Puts snapshot `name` back as the container's layer; the container must
   * be stopped (its overlay unmounted). With later snapshots this is a 409
   * that changes nothing unless `destroyMoreRecent`, which deletes them once
   * the rollback is done. Answers the names deleted.
   */
  async rollback(layer: ContainerLayer, name: string, destroyMoreRecent: boolean, signal?: AbortSignal): Promise<string[]> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => {
      if ((await layer.initPid()) !== undefined) {
        throw new StageRejection(409, `guest ${layer.guestId} is running; stop it before rolling back (its layer is mounted as its root)`);
      }
      const newer = this.later(layer, await this.read(layer), name, destroyMoreRecent);
      const parent = path.dirname(layer.upperDir);
      // What a rollback cut short by a crash left beside the layer (the agent's start has normally seen to it).
      await restoreLayer(layer);
      const tag = randomBytes(6).toString('hex');
      const incoming = path.join(parent, `.rollback-${tag}`);
      const outgoing = path.join(parent, `.replaced-${tag}`);
      try {
        await runTool(this.tools.cp, ['-a', '--reflink=auto', '--', path.join(layer.snapshotsDir, name, LAYER), incoming], signal);
      } catch (error) {
        await rm(incoming, { recursive: true, force: true });
        throw error;
      }
      // Two renames in one folder: the layer is the old one or the new one, never a mix; cut
      // between them, there is none, and restoreLayer puts the old one back.
      await rename(layer.upperDir, outgoing);
      await rename(incoming, layer.upperDir);
      await rm(outgoing, { recursive: true, force: true });
      await this.remove(layer, newer);
      return newer;
    });
  }

  /** The snapshot's layer as a tar stream; ends with an error (a cut transfer) if tar fails. */
  async download(layer: ContainerLayer, name: string): Promise<Readable> {
    checkLayerSnapshotName(name);
    return this.perGuest.run(layer.guestId, async () => {
      this.require(layer, await this.read(layer), name);
      const dir = path.join(layer.snapshotsDir, name, LAYER);
      const args = ['--create', '--file=-', '--directory', dir, '--numeric-owner', '--xattrs', '--xattrs-include=trusted.overlay.*', '--acls', '.'];
      const tar = spawn(this.tools.tar, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let complaint = '';
      tar.stderr.setEncoding('utf8').on('data', (text: string) => (complaint = (complaint + text).slice(-2000)));
      const out = tar.stdout;
      tar.once('error', (error) => out.destroy(new Error(`${this.tools.tar} could not run: ${error.message}`)));
      tar.once('close', (code, signalName) => {
        if (code !== 0) out.destroy(new Error(`tar of snapshot "${name}" ended ${code === null ? `by ${signalName}` : `with ${code}`}: ${withoutPaths(complaint.trim(), args)}`));
      });
      // The client went away (the kernel destroys the stream): tar goes too.
      out.once('close', () => {
        if (tar.exitCode === null) tar.kill('SIGTERM');
      });
      return out;
    });
  }

  /** At agent start, before the API answers: what a crash during a snapshot or a rollback left, put right. */
  recover(layer: ContainerLayer): Promise<LayerRecovery> {
    return this.perGuest.run(layer.guestId, () => recoverLayer(layer));
  }

  /** The container is deleted: every snapshot goes (when its folder is not removed with it anyway). */
  removeAll(layer: ContainerLayer): Promise<void> {
    return this.perGuest.run(layer.guestId, () => rm(layer.snapshotsDir, { recursive: true, force: true }));
  }

  // ---- helpers ---------------------------------------------------------------

  private async copyLayer(layer: ContainerLayer, target: string, signal?: AbortSignal): Promise<void> {
    const copy = () => runTool(this.tools.cp, ['-a', '--reflink=auto', '--', layer.upperDir, target], signal);
    const pid = await layer.initPid();
    if (pid === undefined) return void (await copy());
    let freezer: Freezer;
    try {
      freezer = await freezerOf(pid);
    } catch (error) {
      // It stopped between the two looks: its layer is still now.
      if ((await layer.initPid()) === undefined) return void (await copy());
      throw error;
    }
    if (await freezer.isFrozen()) return void (await copy());
    // Should the agent die before the thaw, its next start thaws the container by this mark.
    await markSnapshotFreeze(layer, pid);
    try {
      await freezer.freeze(signal);
      await copy();
    } finally {
      // Thawed whatever happened, also after a freeze that did not settle.
      await freezer.thaw();
      await clearSnapshotFreeze(layer);
    }
  }

  private async diskBytes(dir: string, signal?: AbortSignal): Promise<number> {
    const { stdout } = await runTool(this.tools.du, ['-s', '-B1', '--', dir], signal);
    const bytes = Number.parseInt(stdout, 10);
    return Number.isFinite(bytes) ? bytes : 0;
  }

  /** The snapshots on disk, oldest first; leftovers of a crash (dot-folders) are swept. */
  private async read(layer: ContainerLayer): Promise<LayerSnapshot[]> {
    let names: string[];
    try {
      names = await readdir(layer.snapshotsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const found: LayerSnapshot[] = [];
    for (const name of names) {
      const dir = path.join(layer.snapshotsDir, name);
      if (name.startsWith('.')) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (!NAME.test(name)) continue;
      const record = await readRecord(dir);
      if (record) found.push({ name, ...record });
    }
    return found.sort((a, b) => a.createdMs - b.createdMs || a.name.localeCompare(b.name));
  }

  private require(layer: ContainerLayer, snapshots: LayerSnapshot[], name: string): LayerSnapshot {
    const found = snapshots.find((s) => s.name === name);
    if (!found) throw new StageRejection(404, `guest ${layer.guestId} has no snapshot "${name}"`);
    return found;
  }

  /** Names of the snapshots taken after `name`; a 409 when there are some and they may not go. */
  private later(layer: ContainerLayer, snapshots: LayerSnapshot[], name: string, destroyMoreRecent: boolean): string[] {
    const point = this.require(layer, snapshots, name);
    const newer = snapshots.filter((s) => s.name !== name && (s.createdMs > point.createdMs || (s.createdMs === point.createdMs && s.name > name))).map((s) => s.name);
    if (newer.length > 0 && !destroyMoreRecent) {
      throw new StageRejection(409, `snapshot "${name}" of guest ${layer.guestId} has later snapshots (${newer.join(', ')}); roll back with destroyMoreRecent to delete them, or delete them first`);
    }
    return newer;
  }

  private async remove(layer: ContainerLayer, names: string[]): Promise<void> {
    for (const name of names) {
      const gone = path.join(layer.snapshotsDir, `.deleting-${randomBytes(6).toString('hex')}`);
      await rename(path.join(layer.snapshotsDir, name), gone);
      await rm(gone, { recursive: true, force: true });
    }
  }
}

async function readRecord(dir: string): Promise<SnapshotRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(path.join(dir, RECORD), 'utf8')) as Partial<SnapshotRecord>;
    if (typeof record.createdMs !== 'number' || typeof record.bytes !== 'number') return undefined;
    await stat(path.join(dir, LAYER));
    return { createdMs: record.createdMs, bytes: record.bytes };
  } catch {
    // Not one of ours, or damaged: not listed.
    return undefined;
  }
}
