/**
 * A snapshot of one disk as a self-contained qcow2 stream (a download).
 * `qemu-img convert -l snapshot.name=...` writes the snapshot's content,
 * backing image included, into a new qcow2 in the guest's run dir; the file
 * is then opened and unlinked at once, so it disappears when the stream is
 * closed (finished, or the client went away) and even if the agent dies
 * mid-download. Never held in memory: the answer is a file stream.
 *
 * Reading a running guest's disk is safe (-U, force share): a snapshot's
 * clusters are copy-on-write, so QEMU never rewrites them while it exists.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { run } from './exec.js';

const PREFIX = '.snapshot-export-';

export interface SnapshotStream {
  stream: Readable;
  /** Bytes in the stream (its Content-Length). */
  size: number;
}

/** Converting gigabytes on a loaded host takes a while; the stage's own signal bounds it. */
const CONVERT_MS = 6 * 3600 * 1000;

export async function exportSnapshot(qemuImg: string, disk: string, name: string, workDir: string, signal?: AbortSignal): Promise<SnapshotStream> {
  const temp = path.join(workDir, `${PREFIX}${randomBytes(6).toString('hex')}.qcow2`);
  try {
    await run(qemuImg, ['convert', '-U', '-O', 'qcow2', '-l', `snapshot.name=${name}`, disk, temp], { signal, timeoutMs: CONVERT_MS });
    const handle = await open(temp, 'r');
    try {
      const { size } = await handle.stat();
      return { stream: handle.createReadStream({ autoClose: true }), size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  } finally {
    // The open handle keeps the data readable; the name goes now.
    await rm(temp, { force: true });
  }
}

/** Removes exports a killed agent left half-written in a run dir. */
export async function removeStaleExports(workDir: string): Promise<void> {
  const names = await readdir(workDir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(PREFIX)).map((n) => rm(path.join(workDir, n), { force: true })));
}
