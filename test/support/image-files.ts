/**
 * Real image files made with qemu-img and qemu-io for image and snapshot
 * tests: a qcow2 with a known data pattern, a raw file, a qcow2 with a
 * backing file (which stores refuse).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export async function qemuImg(...args: string[]): Promise<string> {
  return (await exec('qemu-img', args, { timeout: 120_000 })).stdout;
}

/** Runs qemu-io commands (`write -P 0xab 0 1M`) on an image; returns what it printed. */
export async function qemuIo(file: string, format: string, ...commands: string[]): Promise<string> {
  const args = ['-f', format, ...commands.flatMap((c) => ['-c', c]), file];
  return (await exec('qemu-io', args, { timeout: 120_000 })).stdout;
}

/** True when every byte in [offset, offset+length) of the image is `pattern`. */
export async function hasPattern(file: string, format: string, pattern: number, offset: string, length: string): Promise<boolean> {
  try {
    const out = await qemuIo(file, format, `read -P 0x${pattern.toString(16)} ${offset} ${length}`);
    return !/Pattern verification failed/i.test(out);
  } catch {
    return false;
  }
}

/** A qcow2 of `sizeMiB` virtual MiB with `dataMiB` MiB of 0xab written at offset 0. */
export async function makeQcow2(dir: string, name: string, sizeMiB = 64, dataMiB = 4): Promise<string> {
  const file = path.join(dir, name);
  await qemuImg('create', '-q', '-f', 'qcow2', file, `${sizeMiB}M`);
  if (dataMiB > 0) await qemuIo(file, 'qcow2', `write -P 0xab 0 ${dataMiB}M`);
  return file;
}

export async function makeRaw(dir: string, name: string, sizeMiB: number): Promise<string> {
  const file = path.join(dir, name);
  await qemuImg('create', '-q', '-f', 'raw', file, `${sizeMiB}M`);
  await qemuIo(file, 'raw', `write -P 0xcd 0 ${Math.min(sizeMiB, 1)}M`);
  return file;
}

export async function makeOverlay(dir: string, name: string, backing: string): Promise<string> {
  const file = path.join(dir, name);
  await qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, file);
  return file;
}

export function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file).on('data', (c) => hash.update(c)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
  });
}
