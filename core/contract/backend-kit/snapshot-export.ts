/**
 * A snapshot of one qcow2 disk as a self-contained qcow2 stream (a
 * download), for every backend whose disks are qcow2 files (QEMU, libvirt).
 * `qemu-img convert -U -l snapshot.name=...` writes the snapshot's content,
 * backing image included, into a new qcow2 in `workDir`; the file is opened
 * and unlinked at once, so it disappears when the stream is closed
 * (finished, or the client went away) and even if the agent dies
 * mid-download. Never held in memory: the answer is a file stream.
 *
 * Reading a running guest's disk is safe (-U, force share): a snapshot's
 * clusters are copy-on-write, so QEMU never rewrites them while it exists.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { SnapshotDownload } from '../stage-kinds.js';

/** Names of export files, so a start can remove those a killed agent left. */
export const SNAPSHOT_EXPORT_PREFIX = '.snapshot-export-';

/** Converting gigabytes on a loaded host takes a while; the stage's own signal bounds it. */
export const SNAPSHOT_CONVERT_MS = 6 * 3600 * 1000;

/** Runs `qemu-img` with these arguments the backend's own way (its binary, signal, error wording). */
export type QemuImgRun = (args: string[]) => Promise<unknown>;

export async function exportQcow2Snapshot(qemuImg: QemuImgRun, disk: string, name: string, workDir: string): Promise<Required<SnapshotDownload>> {
  const temp = path.join(workDir, `${SNAPSHOT_EXPORT_PREFIX}${randomBytes(6).toString('hex')}.qcow2`);
  try {
    await qemuImg(['convert', '-U', '-O', 'qcow2', '-l', `snapshot.name=${name}`, disk, temp]);
    const handle = await open(temp, 'r');
    try {
      const { size } = await handle.stat();
      return { stream: handle.createReadStream({ autoClose: true }), size, format: 'qcow2' };
    } catch (error) {
      await handle.close();
      throw error;
    }
  } finally {
    // The open handle keeps the data readable; the name goes now.
    await rm(temp, { force: true });
  }
}

/** Removes exports a killed agent left half-written in `workDir`. */
export async function removeStaleExports(workDir: string): Promise<void> {
  const names = await readdir(workDir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(SNAPSHOT_EXPORT_PREFIX)).map((n) => rm(path.join(workDir, n), { force: true })));
}
