/**
 * Guest disks as qcow2 files in the guest's run dir: blank ones of the
 * requested size, or copy-on-write overlays of a base image from the images
 * folder (the base stays untouched and can back many guests).
 */
import { stat } from 'node:fs/promises';
import { pathExists as exists } from './path-exists.js';
import path from 'node:path';
import { checkImageFile, checkImageName, diskImage, ImageRefused, StageRejection, type Disk, type Guest } from '../../core/contract/index.js';
import { run } from './exec.js';
import type { RunDir } from './run-dir.js';

const MIB = 1024 * 1024;
/** File name endings tried when an image is named without one. */
const IMAGE_SUFFIXES = ['', '.qcow2', '.img', '.raw'];

/**
 * Finds a file named by a guest or disk in the images folder. Names are plain
 * file names: the API must not reach files elsewhere on the host.
 */
export async function findImage(imagesDir: string, name: string, what = 'image'): Promise<string> {
  checkImageName(name, what);
  for (const suffix of IMAGE_SUFFIXES) {
    const candidate = path.join(imagesDir, name + suffix);
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      /* try the next suffix */
    }
  }
  throw new StageRejection(400, `${what} "${name}" not found in the images folder (the qemu plugin's imagesDir; tried ${IMAGE_SUFFIXES.map((s) => name + s).join(', ')})`);
}

/**
 * Creates every disk's qcow2 file and returns the disks with `source` (the
 * file), `volume` (its name under the plugin data dir) and `size` filled in.
 */
export async function createDisks(
  guest: Guest,
  runDir: RunDir,
  options: { qemuImg: string; imagesDir: string; dataDir: string },
  signal?: AbortSignal,
): Promise<Disk[]> {
  const disks: Disk[] = [];
  for (const [index, disk] of guest.disks.entries()) {
    if (disk.source) {
      // Attaching arbitrary host files through the API would expose the host.
      throw new StageRejection(400, `disk ${disk.device}: source is assigned by the agent; name an image or give a size instead`);
    }
    const imageName = diskImage(guest, index);
    const file = runDir.disk(disk.device);
    if (await exists(file)) throw new Error(`disk ${disk.device} of guest ${guest.id} already has a file; refusing to overwrite it`);
    let sizeMiB = disk.size ?? 0;
    if (imageName) {
      const base = await findImage(options.imagesDir, imageName);
      // The shared check, not a probing `qemu-img info`: a file in the folder
      // that is not raw or a self-contained qcow2 must not be opened as one.
      const info = await checkImageFile(options.qemuImg, base, signal).catch((error: unknown) => {
        throw error instanceof ImageRefused ? new StageRejection(400, `image "${imageName}": ${error.message}`) : error;
      });
      const baseMiB = Math.ceil(info.virtualSize / MIB);
      const args = ['create', '-q', '-f', 'qcow2', '-F', info.format, '-b', base, file];
      // An overlay can grow its base (the guest resizes its filesystem) but never shrink it.
      if (sizeMiB > baseMiB) args.push(`${sizeMiB}M`);
      else sizeMiB = baseMiB;
      await run(options.qemuImg, args, { signal });
      disks.push({ ...disk, image: imageName, size: sizeMiB, source: file, volume: path.relative(options.dataDir, file) });
    } else {
      if (!(sizeMiB > 0)) throw new StageRejection(400, `disk ${disk.device} needs a size in MiB or an image`);
      await run(options.qemuImg, ['create', '-q', '-f', 'qcow2', file, `${sizeMiB}M`], { signal });
      disks.push({ ...disk, size: sizeMiB, source: file, volume: path.relative(options.dataDir, file) });
    }
  }
  return disks;
}

