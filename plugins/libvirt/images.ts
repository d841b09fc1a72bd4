/**
 * Direct-boot files (kernel, initrd) that guests name in their metadata.
 * Names are plain file names in the plugin's images folder: the API must not
 * be a way to make libvirt read arbitrary host files.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { checkImageName, StageRejection, type Guest } from '../../core/contract/index.js';

/** Guest metadata keys that boot a kernel directly (no bootloader on disk). */
export const BOOT_METADATA = { kernel: 'libvirt.kernel', initrd: 'libvirt.initrd', cmdline: 'libvirt.cmdline' } as const;

export async function findBootFile(imagesDir: string, name: string, what: string): Promise<string> {
  checkImageName(name, what);
  const file = path.join(imagesDir, name);
  try {
    if ((await stat(file)).isFile()) return file;
  } catch {
    /* reported below */
  }
  throw new StageRejection(400, `${what} "${name}" not found in the images folder (the libvirt plugin's imagesDir option)`);
}

/** The direct-boot files a guest's metadata names, found in the images folder; none when it names no kernel. */
export async function bootFilesOf(imagesDir: string, guest: Guest): Promise<{ kernel?: string; initrd?: string; cmdline?: string }> {
  const kernel = guest.metadata?.[BOOT_METADATA.kernel];
  if (!kernel) return {};
  const initrd = guest.metadata?.[BOOT_METADATA.initrd];
  return {
    kernel: await findBootFile(imagesDir, kernel, 'kernel'),
    initrd: initrd ? await findBootFile(imagesDir, initrd, 'initrd') : undefined,
    cmdline: guest.metadata?.[BOOT_METADATA.cmdline] || undefined,
  };
}
