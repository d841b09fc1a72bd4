/**
 * What the logger reads of sonic-boom's private state: how many bytes wait
 * (`_len`, for the periodic flush and close), and at exit the batches
 * themselves (`_bufs`, `_writingBuf`, `_writing`), which its public API
 * offers only through flushSync (which retries forever on a stalled or
 * closed reader). These are no API, so sonic-boom is pinned exactly in
 * package.json, and test/kernel/log-buffers.test.ts fails, naming the
 * field, when an upgrade moves any of them; at run time a moved field
 * costs at most the last lines at exit (writeOnce gives up), never an exit.
 */
import { writeSync } from 'node:fs';

/** sonic-boom's state in buffer mode (contentMode 'buffer'). */
interface SonicBoomState {
  fd: number;
  _len: number;
  _writing: boolean;
  _writingBuf: Buffer;
  _bufs: Buffer[][];
}

/** Bytes accepted and not yet written. */
export function pendingBytes(destination: object): number {
  return (destination as SonicBoomState)._len;
}

/** The private fields this file reads that `destination` lacks or holds in another shape (none when the pinned release is installed). */
export function missingInternals(destination: object): string[] {
  const boom = destination as Partial<SonicBoomState>;
  const missing: string[] = [];
  if (typeof boom.fd !== 'number') missing.push('fd');
  if (typeof boom._len !== 'number') missing.push('_len');
  if (typeof boom._writing !== 'boolean') missing.push('_writing');
  if (!Buffer.isBuffer(boom._writingBuf)) missing.push('_writingBuf');
  if (!Array.isArray(boom._bufs)) missing.push('_bufs');
  return missing;
}

/**
 * At exit: one write(2) of what is buffered (then `after`: lines not yet
 * handed to sonic-boom), on the non-blocking descriptor.
 * What the pipe does not take now (EAGAIN, a short write) or cannot take
 * (EPIPE) is lost; the exit is never delayed.
 */
export function writeOnce(destination: object, after?: Buffer): void {
  const boom = destination as SonicBoomState;
  // A release that renamed the fields loses these last lines rather than failing every exit.
  if (!Array.isArray(boom._bufs)) return;
  try {
    // A batch is being written (in flight on the thread pool, or partly
    // written and waiting to retry): anything written now would land before
    // the rest of that batch and cut its line in two. Those lines are lost.
    if (boom._writing) return;
    const pending = [boom._writingBuf, ...boom._bufs.flat(), after].filter((b): b is Buffer => Buffer.isBuffer(b) && b.length > 0);
    if (pending.length === 0) return;
    writeSync(boom.fd, Buffer.concat(pending));
  } catch {
    /* stalled or gone: what is left is lost */
  }
}
