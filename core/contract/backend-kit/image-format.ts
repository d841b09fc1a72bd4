/**
 * Which format a guest disk image is, told from its own bytes, and whether
 * a backend may boot it: raw or a self-contained qcow2, nothing else.
 *
 * Why not `qemu-img info FILE`: without `-f` qemu-img probes every format
 * driver on the client's bytes, and the winner opens what the bytes name (a
 * VMDK descriptor's extents, a qcow2's backing or data file) as root before
 * any check runs; its error then tells whether that host path exists. So
 * the format is decided here from the magic bytes, a qcow2 header that
 * names another file is refused from the header alone, every other format
 * qemu or libvirt would recognise is refused (so nothing downstream ever
 * probes such a file into that format), and qemu-img runs only as
 * `-f qcow2` on a qcow2 that names no file. No answer ever names a path.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export const ACCEPTED_IMAGE_FORMATS = ['raw', 'qcow2'] as const;
export type ImageFormat = (typeof ACCEPTED_IMAGE_FORMATS)[number];

export interface CheckedImage {
  format: ImageFormat;
  /** Bytes the guest sees. */
  virtualSize: number;
}

/** The image's bytes are unacceptable: the uploader's fault, never the host's. */
export class ImageRefused extends Error {
  override readonly name = 'ImageRefused';
}

/** qemu's format probes read the first 2 KiB (BLOCK_PROBE_BUF_SIZE); libvirt's the first 4 KiB or so. */
const HEAD_BYTES = 4096;
const SELF_CONTAINED = 'only self-contained raw or qcow2 images are accepted (qemu-img convert -O qcow2 makes one)';

/** Formats qemu's or libvirt's probes recognise by a prefix; each would be read as that format, not as raw. */
const PREFIX_MAGICS: readonly [string, Buffer][] = [
  ['qcow', Buffer.from('QFI\xfb', 'latin1')],
  ['qed', Buffer.from('QFI\0', 'latin1')],
  ['vmdk', Buffer.from('KDMV')],
  ['vmdk', Buffer.from('COWD')],
  ['vhdx', Buffer.from('vhdxfile')],
  ['vpc', Buffer.from('conectix')],
  ['luks', Buffer.from('LUKS\xba\xbe', 'latin1')],
  ['parallels', Buffer.from('WithoutFreeSpace')],
  ['parallels', Buffer.from('WithouFreSpacExt')],
  ['bochs', Buffer.from('Bochs Virtual HD Image')],
  ['cloop', Buffer.from('#!/bin/sh\n#V2.0 Format\n')],
  ['cow', Buffer.from('OOOM')],
];
const VDI_SIGNATURE = 0xbeda107f;

/**
 * The format the first bytes of an image say it is: "qcow2", "raw" (no
 * other format's signature), or the name of a format that is refused.
 */
export function identifyImageFormat(head: Buffer): string {
  for (const [name, magic] of PREFIX_MAGICS) {
    if (head.length >= magic.length && head.subarray(0, magic.length).equals(magic)) {
      return name === 'qcow' && head.length >= 8 && head.readUInt32BE(4) >= 2 ? 'qcow2' : name;
    }
  }
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === VDI_SIGNATURE) return 'vdi';
  if (looksLikeVmdkDescriptor(head)) return 'vmdk';
  return 'raw';
}

/**
 * A VMDK text descriptor, as qemu's vmdk_probe finds one (comment and blank
 * lines, then `version=N`), taken a little wider: any first line starting
 * with `version=` after comments and lines of blanks.
 */
function looksLikeVmdkDescriptor(head: Buffer): boolean {
  const text = head.subarray(0, 2048).toString('latin1');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || /^[ \t\r]*$/.test(line)) continue;
    return /^[ \t]*version=/.test(line);
  }
  return false;
}

/**
 * Checks the image file (the host's own temporary file or a file of an
 * images folder) and says its format and virtual size; an ImageRefused
 * saying why otherwise. Opens nothing but `file`.
 */
export async function checkImageFile(qemuImg: string, file: string, signal?: AbortSignal): Promise<CheckedImage> {
  const { head, size } = await readHead(file);
  const format = identifyImageFormat(head);
  if (format === 'raw') return { format, virtualSize: size };
  if (format !== 'qcow2') throw new ImageRefused(`image format "${format}" is not accepted; ${SELF_CONTAINED}`);
  checkQcow2Header(head);
  return { format, virtualSize: await qcow2VirtualSize(qemuImg, file, signal) };
}

/** The first bytes and the size of a regular file (a FIFO or device is refused without a read). */
async function readHead(file: string): Promise<{ head: Buffer; size: number }> {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ImageRefused('the image is not a regular file');
    const head = Buffer.alloc(Math.min(HEAD_BYTES, info.size));
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return { head: head.subarray(0, bytesRead), size: info.size };
  } finally {
    await handle.close();
  }
}

/** qcow2 header fields (docs/interop/qcow2.txt in QEMU): big-endian, at fixed offsets. */
const QCOW2 = { version: 4, backingOffset: 8, backingSize: 16, cryptMethod: 32, incompatible: 72, v3HeaderEnd: 104 } as const;
/** Incompatible-feature bits qemu 7 knows: dirty, corrupt, external data file, compression type, extended L2. */
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_KNOWN = 0b11111n;

/** Refuses, from the header alone, a qcow2 that names another file or that QEMU cannot boot unaided. */
export function checkQcow2Header(head: Buffer): void {
  if (head.length < 72) throw new ImageRefused('the qcow2 header is truncated');
  const version = head.readUInt32BE(QCOW2.version);
  if (version !== 2 && version !== 3) throw new ImageRefused(`qcow2 version ${version} is not accepted (2 or 3)`);
  if (head.readBigUInt64BE(QCOW2.backingOffset) !== 0n || head.readUInt32BE(QCOW2.backingSize) !== 0) {
    throw new ImageRefused(`the qcow2 image names a backing file; ${SELF_CONTAINED}`);
  }
  if (head.readUInt32BE(QCOW2.cryptMethod) !== 0) throw new ImageRefused('the qcow2 image is encrypted; a guest cannot boot it without its key');
  if (version === 3) {
    if (head.length < QCOW2.v3HeaderEnd) throw new ImageRefused('the qcow2 header is truncated');
    const incompatible = head.readBigUInt64BE(QCOW2.incompatible);
    if (incompatible & INCOMPAT_DATA_FILE) throw new ImageRefused(`the qcow2 image uses an external data file; ${SELF_CONTAINED}`);
    if (incompatible & ~INCOMPAT_KNOWN) throw new ImageRefused(`the qcow2 image uses incompatible features this host does not know (0x${incompatible.toString(16)})`);
  }
}

interface QemuImgInfo {
  'virtual-size'?: number;
  'backing-filename'?: string;
  'format-specific'?: { data?: { 'data-file'?: string } };
}

/**
 * qemu-img's reading of a qcow2 the header check passed: `-f qcow2` so no
 * other driver parses the bytes, `-U` since a guest may have it open.
 * (qemu-img info never opens a backing file without --backing-chain; the
 * header check refused those anyway.)
 */
async function qcow2VirtualSize(qemuImg: string, file: string, signal?: AbortSignal): Promise<number> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(qemuImg, ['info', '-f', 'qcow2', '-U', '--output=json', file], { signal, timeout: 60_000, encoding: 'utf8' }, (error, out, stderr) => {
      if (!error) return resolve(out);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(`${qemuImg} not found; install qemu-utils`));
      if (signal?.aborted) return reject(signal.reason);
      reject(new ImageRefused(`qemu-img cannot read the qcow2 image: ${withoutPaths((stderr || error.message).trim(), file)}`));
    });
  });
  const info = JSON.parse(stdout) as QemuImgInfo;
  // The header said neither; qemu-img saying otherwise means a header this check misread.
  if (info['backing-filename'] || info['format-specific']?.data?.['data-file']) throw new ImageRefused(`the qcow2 image names another file; ${SELF_CONTAINED}`);
  return info['virtual-size'] ?? 0;
}

/** qemu-img's message with the file (and any other absolute path) replaced: answers never show host paths. */
function withoutPaths(message: string, file: string): string {
  return message.replaceAll(file, 'the image').replace(/\/[^\s'"]+/g, 'a host path').replace(/^qemu-img: /, '');
}
