/**
 * A kernel counter file (/proc, /sys) opened once and re-read with pread at
 * offset 0, which makes the kernel generate it afresh (seq_file). A
 * readFileSync by path is open + fstat + read + read-to-EOF + close with a
 * path walk through /proc or /sys: 3–5 µs a file, so 40 µs for the eight
 * counters of a tap; the pread of an open file is under 1 µs.
 *
 * The open file stays bound to what it was opened on, never to its name: a
 * /proc file of a process or thread that exited fails with ESRCH (even when
 * the pid is reused), a sysfs file of a deleted network device with ENODEV
 * (even when a device of that name is created again). A failed read closes
 * the file and throws; the owner decides whether to open the path anew.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** One buffer for every read: reads are synchronous, so never two at once. */
const buffer = Buffer.allocUnsafe(4096);

export class CounterFile {
  private fd: number | undefined;

  /** Opens the file now, so that a missing one fails here (ENOENT). */
  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
  }

  /** The file's text as the kernel makes it now. */
  read(): string {
    if (this.fd === undefined) throw new Error(`counter file ${this.path} was closed`);
    try {
      const length = readSync(this.fd, buffer, 0, buffer.length, 0);
      if (length < buffer.length) return buffer.toString('utf8', 0, length);
      // Counter files are far smaller; a bigger one is read on to its end.
      const chunks = [Buffer.from(buffer)];
      for (let offset = length, n; (n = readSync(this.fd, buffer, 0, buffer.length, offset)) > 0; offset += n) chunks.push(Buffer.from(buffer.subarray(0, n)));
      return Buffer.concat(chunks).toString('utf8');
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Closes the file (again is harmless); a read after this throws. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}
