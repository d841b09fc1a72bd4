/**
 * Direct-boot files (kernel, initrd) that guests name in their metadata.
 * Names are plain file names in the plugin's images folder: the API must not
 * be a way to make libvirt read arbitrary host files.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StageRejection } from '../../core/contract/index.js';

/** Guest metadata keys that boot a kernel directly (no bootloader on disk). */
export const BOOT_METADATA = { kernel: 'libvirt.kernel', initrd: 'libvirt.initrd', cmdline: 'libvirt.cmdline' } as const;

export async function findBootFile(imagesDir: string, name: string, what: string): Promise<string> {
  if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0')) {
    throw new StageRejection(400, `${what} "${name}" must be a file name in the images folder ${imagesDir}, not a path`);
  }
  const file = path.join(imagesDir, name);
  try {
    if ((await stat(file)).isFile()) return file;
  } catch {
    /* reported below */
  }
  throw new StageRejection(400, `${what} "${name}" not found in the images folder ${imagesDir} (the libvirt plugin's imagesDir option)`);
}
