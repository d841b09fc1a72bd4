/**
 * Guest disk images as volumes of the libvirt storage pool, so disks are
 * built on them as copy-on-write overlays in the same pool (storage.ts).
 * Bytes reach the pool through libvirt (`vol-create-as`, then `vol-upload`
 * of a checked local file), never by writing into the pool's folder, so the
 * pool may be of any type libvirt can upload to.
 *
 * An upload is received into a temporary file under the plugin's data dir,
 * checked with qemu-img (raw or qcow2, self-contained), and only then made
 * a volume. While `vol-upload` runs the volume exists but is listed as
 * pending; a marker file names it, so a volume half-uploaded when the agent
 * died is deleted at the next start rather than served as an image.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkImageFile, diskImage, ImageRefused, StageRejection, type Guest, type GuestDirectory, type Image, type Logger } from '../../core/contract/index.js';
import { checkImageName, volumeInfo, volumesOf } from './storage.js';
import { VirshError, type VirshShell } from './virsh-shell.js';

const MIB = 1024 * 1024;
/** Image ids: plain volume names that virsh can never read as an option (no leading "-"), no paths. */
const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
/** The image type these volumes are (mistify's type for virtual machine images). */
export const IMAGE_TYPE = 'kvm';

export interface PoolImagesOptions {
  pool: string;
  uri: string;
  /** The virsh program, for the one-off upload process. */
  virshBinary: string;
  qemuImg: string;
  domainPrefix: string;
  /** Where uploads are received and half-uploaded volumes are marked. */
  workDir: string;
  maxBytes: number;
}

export class PoolImages {
  /** Ids being uploaded or imported now: listed as pending, and one transfer per id. */
  private readonly transfers = new Set<string>();

  constructor(
    private readonly virsh: VirshShell,
    private readonly guests: GuestDirectory,
    private readonly log: Logger,
    private readonly options: PoolImagesOptions,
  ) {}

  /** Removes what an agent that died mid-upload left: temporary files, half-uploaded volumes. */
  async open(): Promise<void> {
    await mkdir(this.options.workDir, { recursive: true });
    for (const name of await readdir(this.options.workDir)) {
      const file = path.join(this.options.workDir, name);
      if (name.endsWith('.uploading')) {
        const volume = (await readFile(file, 'utf8')).trim();
        if (IMAGE_ID.test(volume)) {
          await this.deleteVolume(volume).catch((error: Error) => this.log.warn({ volume, err: error.message }, 'could not delete a half-uploaded image volume'));
          this.log.warn({ volume, pool: this.options.pool }, 'deleted an image volume whose upload the agent did not finish');
        }
      }
      await rm(file, { force: true });
    }
  }

  /** A 400 unless `id` can name an image volume of the pool. */
  checkId(id: string): void {
    if (!IMAGE_ID.test(id) || id.includes('..')) {
      throw new StageRejection(400, `image id "${id}" must be 1-255 letters, digits, ".", "_" or "-", start with a letter or digit and contain no ".."`);
    }
    checkImageName(id, new Set(), this.options.domainPrefix);
  }

  checkType(type: string | undefined): void {
    if (type && type !== IMAGE_TYPE) throw new StageRejection(400, `image type "${type}" is not stored here; the libvirt pool holds "${IMAGE_TYPE}" images (or give "")`);
  }

  async list(type?: string): Promise<Image[]> {
    if (type && type !== IMAGE_TYPE) return [];
    const guestVolumes = volumesOf(await this.guests.list());
    const names = (await this.virsh.run(['vol-list', '--pool', this.options.pool], { readOnly: true }))
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0])
      .filter((name): name is string => !!name && this.isImageName(name, guestVolumes))
      .sort();
    const out: Image[] = [];
    for (const name of names) {
      const image = this.transfers.has(name) ? this.pending(name) : await this.stored(name).catch(() => undefined);
      if (image) out.push(image);
    }
    for (const id of this.transfers) if (!names.includes(id)) out.push(this.pending(id));
    return out;
  }

  /** The image `id`, pending while it is being received, or undefined. */
  async get(id: string): Promise<Image | undefined> {
    this.checkId(id);
    if (this.transfers.has(id)) return this.pending(id);
    return this.stored(id);
  }

  /** The image volume `id` as the pool has it now, transfer or not. */
  async stored(id: string): Promise<Image | undefined> {
    this.checkId(id);
    if (volumesOf(await this.guests.list()).has(id)) return undefined; // a guest's disk, not an image
    const info = await volumeInfo(this.virsh, this.options.pool, id);
    if (!info) return undefined;
    return { id, type: IMAGE_TYPE, volume: `${this.options.pool}/${id}`, snapshot: '', size: Math.ceil(info.capacityBytes / MIB), status: 'complete' };
  }

  /** The image, or a 404 naming it. */
  async require(id: string): Promise<Image> {
    const image = await this.get(id);
    if (!image) throw new StageRejection(404, `no image with id "${id}" in libvirt storage pool "${this.options.pool}"`);
    return image;
  }

  /** 409 naming the first guest whose disk is built on the image. */
  async refuseInUse(id: string): Promise<void> {
    const user = usersOf(await this.guests.list(), id)[0];
    if (user) throw new StageRejection(409, `image ${id} is in use by guest ${user.guest} (disk ${user.disk}); delete that guest first`);
  }

  /**
   * Claims `id` for one transfer; a second claim while it runs is a 409.
   * The returned function releases it.
   */
  claim(id: string): () => void {
    this.checkId(id);
    if (this.transfers.has(id)) throw new StageRejection(409, `image ${id} is already being uploaded or imported; wait for that transfer to end`);
    this.transfers.add(id);
    return () => this.transfers.delete(id);
  }

  /**
   * Receives an uploaded body into a temporary file, checks it, and makes it
   * the volume `id` (replacing an image of that name no guest uses).
   * The caller claimed `id`.
   */
  async upload(id: string, body: Readable, size: number | undefined, sha256: string | undefined, signal: AbortSignal): Promise<Image> {
    if (size !== undefined && size > this.options.maxBytes) {
      throw new StageRejection(413, `the image is ${size} bytes, over the limit of ${this.options.maxBytes / MIB} MiB (the libvirt plugin's maxImageSizeMiB option)`);
    }
    if (sha256 && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new StageRejection(400, `sha256 "${sha256}" is not 64 hex digits`);
    // The id's first characters and a random tail: a 255-character id would make too long a name.
    const temp = path.join(this.options.workDir, `${id.slice(0, 64)}.partial-${randomBytes(6).toString('hex')}`);
    try {
      const received = await this.receive(body, temp, size, Boolean(sha256), signal);
      if (sha256 && received !== sha256.toLowerCase()) throw new StageRejection(422, `upload of image ${id} failed: sha256 mismatch: expected ${sha256.toLowerCase()}, the upload gave ${received}`);
      return await this.importFile(id, temp, signal);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * Makes a checked local file the volume `id`: vol-create-as of the file's
   * format and size, then vol-upload through a virsh process of its own (so
   * a long upload never holds up lifecycle commands). An existing image of
   * that name is replaced unless a guest's disk is built on it (409).
   */
  async importFile(id: string, file: string, signal: AbortSignal): Promise<Image> {
    const { format, virtualSize } = await checkImageFile(this.options.qemuImg, file, signal).catch((error: unknown) => {
      // Refused bytes (format, a named backing or data file) are the uploader's fault.
      throw error instanceof ImageRefused ? new StageRejection(422, error.message) : error;
    });
    const bytes = (await stat(file)).size;
    if (await volumeInfo(this.virsh, this.options.pool, id)) {
      await this.refuseInUse(id);
      await this.deleteVolume(id);
    }
    const marker = path.join(this.options.workDir, `${randomBytes(6).toString('hex')}.uploading`);
    await writeFile(marker, id);
    try {
      // The volume's own size is the file's: vol-upload writes the bytes as they are (qcow2 header included).
      await this.virsh.run(['vol-create-as', this.options.pool, id, `${bytes}B`, '--format', format]);
      try {
        await this.uploadProcess(id, file, signal);
        // libvirt re-reads the volume (qcow2 virtual size, format) in the background after an upload; now, so lists are right at once.
        await this.virsh.run(['pool-refresh', this.options.pool]);
      } catch (error) {
        await this.deleteVolume(id).catch(() => undefined);
        throw error;
      }
    } finally {
      await rm(marker, { force: true });
    }
    return { id, type: IMAGE_TYPE, volume: `${this.options.pool}/${id}`, snapshot: '', size: Math.ceil(virtualSize / MIB), status: 'complete' };
  }

  /** Deletes the image volume; the caller checked no guest uses it. */
  async remove(id: string): Promise<void> {
    this.checkId(id);
    if (this.transfers.has(id)) throw new StageRejection(409, `image ${id} is being uploaded or imported; delete it when that ends`);
    await this.require(id);
    await this.deleteVolume(id);
  }

  /** True when `name` is a volume a guest's disk may be built on (checkImageName's rules, quietly). */
  private isImageName(name: string, guestVolumes: ReadonlySet<string>): boolean {
    if (!IMAGE_ID.test(name) || name.includes('..')) return false;
    try {
      checkImageName(name, guestVolumes, this.options.domainPrefix);
      return true;
    } catch {
      return false;
    }
  }

  private pending(id: string): Image {
    return { id, type: IMAGE_TYPE, volume: '', snapshot: '', size: 0, status: 'pending' };
  }

  private async deleteVolume(name: string): Promise<void> {
    try {
      await this.virsh.run(['vol-delete', '--pool', this.options.pool, name]);
    } catch (error) {
      if (error instanceof VirshError && /Storage volume not found|no storage vol/i.test(error.detail)) return;
      throw error;
    }
  }

  /** Streams the body into `file`, bounded by maxBytes; answers its sha256 when asked ("" otherwise). */
  private async receive(body: Readable, file: string, size: number | undefined, hash: boolean, signal: AbortSignal): Promise<string> {
    const digest = hash ? createHash('sha256') : undefined;
    const max = this.options.maxBytes;
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > max) return done(new StageRejection(413, `the image is larger than the limit of ${max / MIB} MiB (the libvirt plugin's maxImageSizeMiB option)`));
        digest?.update(chunk);
        done(null, chunk);
      },
    });
    // 'wx': never write through an existing file.
    await pipeline(body, meter, createWriteStream(file, { flags: 'wx', mode: 0o600, highWaterMark: MIB }), { signal });
    if (size !== undefined && bytes !== size) throw new Error(`the upload ended after ${bytes} of ${size} bytes`);
    return digest?.digest('hex') ?? '';
  }

  private uploadProcess(id: string, file: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      // "--": nothing after it is an option, whatever the name (ids cannot start with "-" anyway).
      const child = spawn(this.options.virshBinary, ['-q', '-c', this.options.uri, 'vol-upload', '--pool', this.options.pool, '--', id, file], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        signal,
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk.slice(0, 4000)));
      child.once('error', (error) => reject(signal.aborted ? new Error(`upload of image ${id} into the pool cancelled`) : error));
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`virsh vol-upload of image ${id} into pool ${this.options.pool} failed: ${stderr.replace(/^error: /gm, '').trim().replaceAll(file, 'the received file') || `exit ${code}`}`));
      });
    });
  }
}

/** Guests whose disks are built on the image `id` (by name, as create resolves it). */
export function usersOf(guests: Guest[], id: string): { guest: string; disk: string }[] {
  const users: { guest: string; disk: string }[] = [];
  for (const guest of guests) {
    for (const [i, disk] of guest.disks.entries()) {
      const name = diskImage(guest, i);
      if (name === id) users.push({ guest: guest.id, disk: disk.device || String(i) });
    }
  }
  return users;
}
