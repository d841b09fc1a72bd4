/**
 * A folder of guest disk images (raw or qcow2), each a file named by its
 * id. Images arrive by fetch (http, https, file) or upload; either way the
 * bytes go to a temporary file in the same folder, are checked, and only
 * then renamed into place, so the folder never holds a partial image under
 * an image's name, and a crash leaves only temporary files, removed at the
 * next start.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, stat, statfs, unlink, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { checkImageFile, ImageRefused, StageRejection } from '../../core/contract/index.js';
import { invalidImageId } from './image-id.js';
import { checkFileSource, discard, openSource, parseSource, SourceRefused, describeNetworkError, type SourcePolicy } from './image-source.js';
import { receiveToFile, TooLarge } from './receive-image.js';

const MIB = 1024 * 1024;
const TEMP_MARK = '.partial-';
/** File name endings tried when an image is named without one (as the QEMU backend does). */
export const IMAGE_SUFFIXES = ['', '.qcow2', '.img', '.raw'];

/** mistify's Image as this store fills it. */
export interface ImageEntry {
  id: string;
  type: string;
  /** The image's file name in the images folder. */
  volume: string;
  snapshot: string;
  /** MiB the guest sees (qcow2 virtual size), rounded up. */
  size: number;
  /** complete, or pending while it is being fetched or uploaded. */
  status: 'complete' | 'pending';
  format?: string;
}

export interface Progress {
  done: number;
  total?: number;
}

export interface ImageStoreOptions {
  dir: string;
  qemuImg: string;
  /** The type reported for (and accepted on) images here, mistify's "kvm". */
  type: string;
  maxBytes: number;
  /** Base URL an empty source is fetched from (base + id); "" = none. */
  imageServer: string;
  policy: SourcePolicy;
}

export interface TransferOptions {
  signal: AbortSignal;
  /** Hex sha256 the bytes must have; "" = not checked. */
  sha256?: string;
  onProgress?: (progress: Progress) => void;
}

export interface FetchPlan {
  id: string;
  url: URL;
}

/** One image being received; `release` frees the id for the next transfer. */
interface Transfer {
  progress: Progress;
}

export class ImageStore {
  private readonly transfers = new Map<string, Transfer>();

  constructor(private readonly options: ImageStoreOptions) {}

  /** Creates the folder and removes temporary files a crash or a kill left. */
  async open(): Promise<{ removed: number }> {
    await mkdir(this.options.dir, { recursive: true });
    let removed = 0;
    for (const name of await readdir(this.options.dir)) {
      if (name.startsWith('.') && name.includes(TEMP_MARK)) {
        await unlink(path.join(this.options.dir, name)).catch(() => undefined);
        removed++;
      }
    }
    return { removed };
  }

  async list(type?: string): Promise<ImageEntry[]> {
    if (type && type !== this.options.type) return [];
    const names = (await readdir(this.options.dir)).filter((n) => !n.startsWith('.')).sort();
    const out: ImageEntry[] = [];
    for (const name of names) {
      const entry = await this.describe(name).catch(() => undefined);
      if (entry) out.push(entry);
    }
    for (const id of this.transfers.keys()) if (!names.includes(id)) out.push(this.pending(id));
    return out;
  }

  /** The image named `id`, a pending one while it is being received, or undefined. */
  async get(id: string): Promise<ImageEntry | undefined> {
    this.checkId(id);
    if (this.transfers.has(id)) return this.pending(id);
    return this.describe(id).catch(() => undefined);
  }

  /** The file an image name resolves to (exact id first, then with a known suffix). */
  async resolve(name: string): Promise<string | undefined> {
    if (invalidImageId(name)) return undefined;
    for (const suffix of IMAGE_SUFFIXES) {
      const file = path.join(this.options.dir, name + suffix);
      if (await stat(file).then((s) => s.isFile(), () => false)) return file;
    }
    return undefined;
  }

  fileOf(id: string): string {
    this.checkId(id);
    return path.join(this.options.dir, id);
  }

  /**
   * The synchronous part of a fetch: checks the request and says where the
   * bytes will come from. Refusals are the client's fault (StageRejection).
   */
  planFetch(request: { id: string; type?: string; source?: string; sha256?: string }): FetchPlan {
    this.checkRequest(request);
    let source = request.source ?? '';
    if (!source) {
      if (!this.options.imageServer) {
        throw new StageRejection(400, `source is empty and no image server is configured: set the images plugin's "imageServer" option (images are then fetched from it as base URL + id) or give a source URL`);
      }
      const base = this.options.imageServer.endsWith('/') ? this.options.imageServer : `${this.options.imageServer}/`;
      source = new URL(encodeURIComponent(request.id), base).href;
    }
    try {
      return { id: request.id, url: parseSource(source, this.options.policy) };
    } catch (error) {
      if (error instanceof SourceRefused) throw new StageRejection(400, error.message);
      throw error;
    }
  }

  /**
   * planFetch, and a file: source checked on the host too (400 at once,
   * before any job is queued; the fetch checks it again when it opens it).
   */
  async checkFetch(request: { id: string; type?: string; source?: string; sha256?: string }): Promise<FetchPlan> {
    const plan = this.planFetch(request);
    if (plan.url.protocol === 'file:') {
      try {
        await checkFileSource(plan.url, this.options.policy);
      } catch (error) {
        if (error instanceof SourceRefused) throw new StageRejection(400, error.message);
        throw error;
      }
    }
    return plan;
  }

  /** True while a fetch or upload of `id` runs. */
  busy(id: string): boolean {
    return this.transfers.has(id);
  }

  /**
   * Claims `id` for one transfer; a second claim while it runs is a 409.
   * The returned function releases it and must be called once.
   */
  claim(id: string): () => void {
    this.checkId(id);
    if (this.transfers.has(id)) throw new StageRejection(409, `image ${id} is already being fetched or uploaded; wait for that transfer to end`);
    const transfer: Transfer = { progress: { done: 0 } };
    this.transfers.set(id, transfer);
    let released = false;
    return () => {
      if (!released && this.transfers.get(id) === transfer) this.transfers.delete(id);
      released = true;
    };
  }

  /** Fetches a planned source into the image `id` (which the caller claimed). */
  async fetch(plan: FetchPlan, options: TransferOptions): Promise<ImageEntry> {
    let opened;
    try {
      opened = await openSource(plan.url, this.options.policy, options.signal);
    } catch (error) {
      if (error instanceof SourceRefused) throw error;
      throw new Error(`fetch of image ${plan.id} failed: ${options.signal.aborted ? abortReason(options.signal) : (error as Error).message}`);
    }
    return this.receive(plan.id, opened.stream, { ...options, total: opened.total, from: 'source' });
  }

  /** Stores an uploaded stream as the image `id` (which the caller claimed). */
  async upload(id: string, body: Readable, total: number | undefined, options: TransferOptions): Promise<ImageEntry> {
    return this.receive(id, body, { ...options, total, from: 'upload' });
  }

  /** Removes an image. The caller checks first that no guest uses it. */
  async remove(id: string): Promise<void> {
    this.checkId(id);
    if (this.transfers.has(id)) throw new StageRejection(409, `image ${id} is being fetched or uploaded; delete it when that ends`);
    try {
      await unlink(path.join(this.options.dir, id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new StageRejection(404, `no image with id "${id}" on this host`);
      throw error;
    }
    await syncDir(this.options.dir);
  }

  private async receive(
    id: string,
    stream: Readable,
    options: TransferOptions & { total?: number; from: 'source' | 'upload' },
  ): Promise<ImageEntry> {
    const transfer = this.transfers.get(id);
    const what = options.from === 'source' ? `fetch of image ${id}` : `upload of image ${id}`;
    const temp = path.join(this.options.dir, tempName(id));
    try {
      if (options.total !== undefined) {
        if (options.total > this.options.maxBytes) {
          throw new TooLarge(`the image is ${options.total} bytes, over the limit of ${this.options.maxBytes / MIB} MiB (the images plugin's maxImageSizeMiB option)`);
        }
        await this.checkFreeSpace(options.total);
      }
      let lastReport = 0;
      const received = await receiveToFile(stream, temp, {
        total: options.total,
        maxBytes: this.options.maxBytes,
        hash: Boolean(options.sha256),
        signal: options.signal,
        onProgress: (done, total) => {
          if (transfer) transfer.progress = { done, total };
          const now = Date.now();
          // At most twice a second: progress goes to the job, which is persisted.
          if (options.onProgress && (now - lastReport >= 500 || done === total)) {
            lastReport = now;
            options.onProgress({ done, total });
          }
        },
      });
      if (options.sha256 && received.sha256 !== options.sha256.toLowerCase()) {
        throw new ImageRefused(`sha256 mismatch: expected ${options.sha256.toLowerCase()}, the ${options.from} gave ${received.sha256}`);
      }
      const info = await checkImageFile(this.options.qemuImg, temp, options.signal);
      await rename(temp, path.join(this.options.dir, id));
      await syncDir(this.options.dir);
      return this.entry(id, info.format, info.virtualSize);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      const refused = options.signal.aborted ? undefined : error instanceof TooLarge ? 'tooLarge' : error instanceof ImageRefused ? 'bytes' : undefined;
      throw new TransferFailed(`${what} failed: ${this.explain(error, options.signal)}`, refused, { cause: error });
    } finally {
      // A source still open (failed check, abort) must not keep its socket.
      if (!stream.destroyed) discard(stream);
    }
  }

  private explain(error: unknown, signal: AbortSignal): string {
    if (signal.aborted) return abortReason(signal);
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') return "the images folder's file system is full (ENOSPC); nothing was kept";
    if (e.code === 'EDQUOT') return "the images folder's disk quota is exhausted (EDQUOT); nothing was kept";
    if (error instanceof TooLarge || error instanceof ImageRefused) return error.message;
    if (e.code === 'ERR_STREAM_PREMATURE_CLOSE' || e.code === 'ECONNRESET' || (e.code ?? '').startsWith('UND_ERR')) {
      return `${describeNetworkError(error)} before the image was complete; nothing was kept`;
    }
    // Node's file-system errors name the file: a host path, which never leaves the agent.
    if (e.code && e.syscall) return `${e.code} (${e.syscall}) in the images folder; nothing was kept`;
    return e.message ?? String(error);
  }

  private async checkFreeSpace(bytes: number): Promise<void> {
    const fs = await statfs(this.options.dir);
    const free = fs.bavail * fs.bsize;
    if (bytes > free) {
      throw new Error(`the images folder's file system has ${free} bytes free, the image needs ${bytes}`);
    }
  }

  private async describe(name: string): Promise<ImageEntry | undefined> {
    const file = path.join(this.options.dir, name);
    if (!(await stat(file)).isFile()) return undefined;
    const info = await checkImageFile(this.options.qemuImg, file).catch(() => undefined);
    return this.entry(name, info?.format ?? 'unknown', info?.virtualSize ?? (await stat(file)).size);
  }

  private entry(id: string, format: string, virtualSize: number): ImageEntry {
    return { id, type: this.options.type, volume: id, snapshot: '', size: Math.ceil(virtualSize / MIB), status: 'complete', format };
  }

  private pending(id: string): ImageEntry {
    return { id, type: this.options.type, volume: '', snapshot: '', size: 0, status: 'pending' };
  }

  /** The id, type and sha256 of a fetch or upload are sound (else a 400 naming the field). */
  checkRequest(request: { id: string; type?: string; sha256?: string }): void {
    this.checkId(request.id);
    this.checkType(request.type);
    this.checkSha256(request.sha256);
  }

  private checkId(id: string): void {
    const problem = invalidImageId(id);
    if (problem) throw new StageRejection(400, problem);
  }

  private checkType(type: string | undefined): void {
    if (type && type !== this.options.type) {
      throw new StageRejection(400, `image type "${type}" is not stored here; this store holds "${this.options.type}" images (or give "")`);
    }
  }

  private checkSha256(sha256: string | undefined): void {
    if (sha256 && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new StageRejection(400, `sha256 "${sha256}" is not 64 hex digits`);
  }

  /** Progress of a running transfer, for the job. */
  progressOf(id: string): Progress | undefined {
    return this.transfers.get(id)?.progress;
  }
}

/**
 * A fetch or upload that failed; `refused` says why when the bytes
 * themselves were unacceptable (over the size limit; format or checksum)
 * rather than the transfer failing.
 */
export class TransferFailed extends Error {
  override readonly name = 'TransferFailed';
  constructor(message: string, readonly refused: 'tooLarge' | 'bytes' | undefined, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A temporary file's name for `id`: hidden, marked, unique, and within the
 * 255 bytes a file name may have whatever the id's length (ids may have
 * 255 characters themselves). The id's first characters are kept so a
 * person can tell whose it is.
 */
export function tempName(id: string): string {
  return `.${id.slice(0, 64)}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
}

function abortReason(signal: AbortSignal): string {
  const reason = signal.reason as Error | undefined;
  return `cancelled (${reason?.message ?? 'aborted'}); nothing was kept`;
}

/** A rename or unlink is durable once the folder itself is synced. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
