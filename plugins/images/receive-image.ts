/**
 * Streams bytes into a temporary file beside the images, counting and
 * hashing them on the way, bounded in size. Memory stays flat whatever the
 * image's size: the stream is piped, never collected.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Received {
  bytes: number;
  /** Hex digest; "" when not asked for. */
  sha256: string;
}

export interface ReceiveOptions {
  /** Bytes announced by the source, for progress; undefined when unknown. */
  total?: number;
  maxBytes: number;
  /** Hash the bytes (only when a digest is to be checked: hashing costs throughput). */
  hash: boolean;
  signal: AbortSignal;
  onProgress?: (done: number, total: number | undefined) => void;
}

/** The stream carried more than the limit. */
export class TooLarge extends Error {
  override readonly name = 'TooLarge';
}

export async function receiveToFile(source: Readable, file: string, options: ReceiveOptions): Promise<Received> {
  const hash = options.hash ? createHash('sha256') : undefined;
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) return done(new TooLarge(`the image is larger than the limit of ${options.maxBytes / (1024 * 1024)} MiB (the images plugin's maxImageSizeMiB option)`));
      hash?.update(chunk);
      options.onProgress?.(bytes, options.total);
      done(null, chunk);
    },
  });
  // 'wx': never write through an existing file (or a link an attacker placed).
  const writer = createWriteStream(file, { flags: 'wx', mode: 0o640, highWaterMark: 1024 * 1024 });
  const writerClosed = new Promise<void>((resolve) => writer.once('close', resolve));
  try {
    await pipeline(source, meter, writer, { signal: options.signal });
  } catch (error) {
    // An abort can come while the file is still being opened (and so
    // created): only once the writer closed may the caller unlink it, or the
    // open lands after the unlink and leaves the partial file behind.
    await writerClosed;
    throw error;
  }
  if (options.total !== undefined && bytes !== options.total) {
    throw new Error(`the source ended after ${bytes} of ${options.total} bytes`);
  }
  // The bytes must be on disk before the rename makes them the image.
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash?.digest('hex') ?? '' };
}
