/**
 * What `qemu-img info` says about a received file, and whether the store
 * accepts it: raw or qcow2, and self-contained. A qcow2 with a backing file
 * or an external data file would make QEMU open another host file named
 * inside the image, so it is refused.
 */
import { execFile } from 'node:child_process';

export const ACCEPTED_FORMATS = ['raw', 'qcow2'] as const;

export interface ImageFileInfo {
  format: string;
  /** Bytes the guest sees. */
  virtualSize: number;
}

interface QemuImgInfo {
  format?: string;
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string } };
}

export class ImageRefused extends Error {
  override readonly name = 'ImageRefused';
}

export async function checkImageFile(qemuImg: string, file: string, signal?: AbortSignal): Promise<ImageFileInfo> {
  const info = JSON.parse(await qemuImgInfo(qemuImg, file, signal)) as QemuImgInfo;
  const format = info.format ?? 'unknown';
  if (!(ACCEPTED_FORMATS as readonly string[]).includes(format)) {
    throw new ImageRefused(`image format "${format}" is not accepted; use ${ACCEPTED_FORMATS.join(' or ')}`);
  }
  if (info['backing-filename'] || info['full-backing-filename']) {
    throw new ImageRefused(`qcow2 image has a backing file ("${info['backing-filename'] ?? info['full-backing-filename']}"); only self-contained images are accepted (qemu-img convert -O qcow2 makes one)`);
  }
  if (info['format-specific']?.data?.['data-file']) {
    throw new ImageRefused('qcow2 image uses an external data file; only self-contained images are accepted');
  }
  return { format, virtualSize: info['virtual-size'] ?? 0 };
}

function qemuImgInfo(qemuImg: string, file: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    // -U: a guest may have the image open; --output=json: parseable.
    execFile(qemuImg, ['info', '--output=json', '-U', file], { signal, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(`${qemuImg} not found; install qemu-utils`));
      // qemu-img names the file it read; the message reaches the API, which never shows host paths.
      const detail = (stderr || error.message).trim().replaceAll(file, 'the received file');
      reject(new ImageRefused(`qemu-img cannot read the image: ${detail}`));
    });
  });
}
