/**
 * Follows a console log file as it grows (tail -F): bytes appended are
 * handed on in order, through rotation (virtlogd renames the file to
 * FILE.0 and starts a new one: the old one is read to its end through the
 * handle still open on it, then the new one from its start) and through a
 * file that does not exist yet (a guest that never ran: read from its first
 * byte once it appears). A follower can also rotate the file itself (copy
 * and truncate, for a writer that rotates nothing well: LXC's console log),
 * so nothing is read twice or skipped. inotify (fs.watch on the folder)
 * says when to read; a slow poll covers what it might miss.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

const POLL_MS = 1000;
const CHUNK_BYTES = 64 * 1024;

export class LogFollower {
  private handle?: FileHandle;
  private inode?: number;
  private position = 0;
  private reading = false;
  /** The read in progress, while `reading`. */
  private current: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = false;
  private watcher?: FSWatcher;
  private readonly poll: NodeJS.Timeout;

  /** Starts at the file's current end: what was there before is the log's, not news. */
  private constructor(
    private readonly file: string,
    private readonly onBytes: (bytes: Buffer) => void,
    private readonly onError: (error: Error) => void,
  ) {
    this.poll = setInterval(() => this.read(), POLL_MS);
    this.poll.unref();
  }

  static async start(file: string, onBytes: (bytes: Buffer) => void, onError: (error: Error) => void): Promise<LogFollower> {
    const follower = new LogFollower(file, onBytes, onError);
    await follower.openAtEnd();
    try {
      follower.watcher = watch(path.dirname(file), (_event, name) => {
        if (name === null || String(name).startsWith(path.basename(file))) follower.read();
      });
      follower.watcher.on('error', () => undefined);
    } catch {
      // No inotify (or the folder is gone): the poll still reads.
    }
    return follower;
  }

  /**
   * Rotates the followed file by copy and truncate, as console-log.ts'
   * rotateLog does for a writer that keeps it open with O_APPEND, but with
   * no read of this follower in between: its last `maxBytes` (and whatever
   * the writer adds meanwhile, handed on as read) become FILE.1, the file is
   * truncated and followed from its new start. Only what lands between the
   * last read and the truncate itself (microseconds) misses both the log
   * and the viewers. Answers whether it rotated.
   */
  async rotate(maxBytes: number): Promise<boolean> {
    while (this.reading) await this.current;
    if (this.stopped || !this.handle) return false;
    this.reading = true;
    const temporary = `${this.file}.1.tmp`;
    try {
      await this.drain();
      const size = this.position;
      if (size <= maxBytes || (await stat(this.file)).ino !== this.inode) return false;
      const kept = Buffer.alloc(maxBytes);
      const { bytesRead } = await this.handle.read(kept, 0, maxBytes, size - maxBytes);
      const out = await open(temporary, 'w');
      try {
        await out.writeFile(kept.subarray(0, bytesRead));
        // What the writer added meanwhile: handed on, and kept.
        const late = await this.readNew();
        if (late.length > 0) await out.writeFile(late);
      } finally {
        await out.close();
      }
      await truncate(this.file, 0);
      this.position = 0;
      await rename(temporary, `${this.file}.1`);
      return true;
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    } finally {
      this.reading = false;
      this.read();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.poll);
    this.watcher?.close();
    void this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  private async openAtEnd(): Promise<void> {
    try {
      this.handle = await open(this.file, 'r');
      const info = await this.handle.stat();
      this.inode = info.ino;
      this.position = info.size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Reads whatever is new; a read requested while one runs makes that one go round again. */
  private read(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.current = this.readAll()
      .catch((error: Error) => {
        if (!this.stopped) this.onError(error);
      })
      .finally(() => (this.reading = false));
  }

  private async readAll(): Promise<void> {
    do {
      this.again = false;
      if (!this.handle) {
        // A file that appears after we started is new output from its first byte.
        try {
          this.handle = await open(this.file, 'r');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw error;
        }
        this.inode = (await this.handle.stat()).ino;
        this.position = 0;
      }
      await this.drain();
      const now = await stat(this.file).catch(() => undefined);
      if (!now || now.ino !== this.inode) {
        // Rotated (or removed): what was written to the old file was read above.
        await this.handle?.close();
        this.handle = undefined;
        if (now) this.again = true;
      } else if (now.size < this.position) {
        // Truncated in place: go on from its start.
        this.position = 0;
        this.again = true;
      }
    } while (this.again && !this.stopped);
  }

  /** Reads to the end, handing the bytes on; answers them too. */
  private async readNew(): Promise<Buffer> {
    const parts: Buffer[] = [];
    const buffer = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      if (!this.handle) break;
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.position);
      if (bytesRead === 0) break;
      this.position += bytesRead;
      const bytes = Buffer.from(buffer.subarray(0, bytesRead));
      parts.push(bytes);
      this.onBytes(bytes);
    }
    return Buffer.concat(parts);
  }

  private async drain(): Promise<void> {
    const buffer = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      if (this.stopped || !this.handle) return;
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      this.onBytes(Buffer.from(buffer.subarray(0, bytesRead)));
    }
  }
}
