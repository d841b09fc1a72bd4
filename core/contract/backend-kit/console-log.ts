/**
 * A console log kept as two files: `FILE` (written now, by the hypervisor
 * or the backend, opened with O_APPEND) and `FILE.1` (the part before). The
 * writer keeps the file open, so rotation copies and truncates rather than
 * renames (a renamed file would go on growing under its new name); with
 * O_APPEND the writer's next byte lands at the new end. See docs/console.md.
 */
import { open, rename, rm, stat } from 'node:fs/promises';

/** The last `bytes` bytes of the log (FILE.1 then FILE), oldest first. */
export async function readLogTail(file: string, bytes: number): Promise<Buffer> {
  const current = await readTail(file, bytes);
  if (current.length >= bytes) return current;
  const older = await readTail(`${file}.1`, bytes - current.length);
  return Buffer.concat([older, current]);
}

async function readTail(file: string, bytes: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, size - length);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * When FILE holds more than `maxBytes`: its last `maxBytes` become FILE.1
 * (replacing the one before) and FILE is truncated. Bytes the writer adds
 * while this runs are carried over up to the truncation itself; only what
 * lands between the last read and the truncate (microseconds) is lost.
 * Answers whether it rotated.
 */
export async function rotateLog(file: string, maxBytes: number): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (size <= maxBytes) return false;
  const handle = await open(file, 'r+');
  const temporary = `${file}.1.tmp`;
  try {
    const start = Math.max(0, size - maxBytes);
    const kept = await readRange(handle, start, size);
    await writeFileWith(temporary, kept);
    // Whatever the writer added meanwhile goes along, just before the truncate.
    const late = await readRange(handle, size, (await handle.stat()).size);
    if (late.length > 0) await writeFileWith(temporary, late, 'a');
    await handle.truncate(0);
    await rename(temporary, `${file}.1`);
    return true;
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  } finally {
    await handle.close();
  }
}

async function readRange(handle: Awaited<ReturnType<typeof open>>, from: number, to: number): Promise<Buffer> {
  const buffer = Buffer.alloc(Math.max(0, to - from));
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, from + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

async function writeFileWith(file: string, bytes: Buffer, flags: 'w' | 'a' = 'w'): Promise<void> {
  const handle = await open(file, flags);
  try {
    await handle.writeFile(bytes);
  } finally {
    await handle.close();
  }
}
