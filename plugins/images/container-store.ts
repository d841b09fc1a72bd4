/**
 * Container images: each fetched once with skopeo into an OCI layout in a
 * temporary folder, unpacked once with umoci into a bundle (rootfs/ and the
 * image's runtime config.json), renamed into place as <dir>/<id>, and its
 * rootfs bind-mounted read-only onto itself. A container backend makes
 * each container's root an overlayfs whose lower layer is that rootfs, so
 * a create copies nothing and no container can change the base.
 * A crash leaves only `.ID.partial-*` folders, removed at the next start.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { openSource, type SourcePolicy } from './image-source.js';
import type { ContainerSource } from './container-source.js';

const TEMP_MARK = '.partial-';
const META = 'image.json';
const MIB = 1024 * 1024;

export interface ContainerImageEntry {
  id: string;
  type: string;
  size: number;
  status: 'complete' | 'pending';
}

export interface ContainerStoreOptions {
  dir: string;
  type: string;
  skopeo: string;
  umoci: string;
  maxBytes: number;
  policy: SourcePolicy;
  /** Host id the image's root becomes (its ids 0-65535 shifted by it); 0: kept as they are. */
  idShift: number;
}

export class ContainerImageStore {
  private readonly pending = new Set<string>();

  constructor(private readonly options: ContainerStoreOptions) {}

  /** Creates the folder, removes what a crash left, and mounts every base read-only again (after a reboot). */
  async open(): Promise<{ removed: number }> {
    await mkdir(this.options.dir, { recursive: true });
    let removed = 0;
    for (const name of await readdir(this.options.dir)) {
      if (name.startsWith('.') && name.includes(TEMP_MARK)) {
        await rm(path.join(this.options.dir, name), { recursive: true, force: true });
        removed++;
      } else if (!name.startsWith('.')) {
        await this.protect(this.rootfsOf(name)).catch(() => undefined);
      }
    }
    return { removed };
  }

  async list(): Promise<ContainerImageEntry[]> {
    const names = (await readdir(this.options.dir)).filter((n) => !n.startsWith('.')).sort();
    const out: ContainerImageEntry[] = [];
    for (const name of names) {
      const entry = await this.describe(name);
      if (entry) out.push(entry);
    }
    for (const id of this.pending) if (!names.includes(id)) out.push(this.pendingEntry(id));
    return out;
  }

  async get(id: string): Promise<ContainerImageEntry | undefined> {
    if (this.pending.has(id)) return this.pendingEntry(id);
    return this.describe(id);
  }

  /** The unpacked, read-only root of an image: the lower layer of its containers. */
  rootfsOf(id: string): string {
    return path.join(this.options.dir, id, 'rootfs');
  }

  /** Fetches and unpacks `source` as image `id`; on any failure nothing is left. */
  async fetch(id: string, source: ContainerSource, signal: AbortSignal): Promise<ContainerImageEntry> {
    const temp = path.join(this.options.dir, `.${id}${TEMP_MARK}${randomBytes(4).toString('hex')}`);
    this.pending.add(id);
    try {
      await mkdir(temp);
      const layout = `${path.join(temp, 'layout')}:image`;
      await this.run(this.options.skopeo, ['--insecure-policy', 'copy', '--quiet', ...(await this.sourceArgs(source, temp, signal)), `oci:${layout}`], signal, temp);
      // As root the image's own owners and modes are kept (a container's files belong to its users);
      // a non-root agent can only unpack rootless (every file its own).
      // Shifted (as root, for unprivileged containers): root inside owns what the image's root owned.
      const asRoot = process.getuid?.() === 0;
      const rootless = asRoot ? [] : ['--rootless'];
      const shift = asRoot && this.options.idShift > 0 ? ['--uid-map', `0:${this.options.idShift}:65536`, '--gid-map', `0:${this.options.idShift}:65536`] : [];
      await this.run(this.options.umoci, ['unpack', ...rootless, ...shift, '--image', layout, path.join(temp, 'bundle')], signal, temp);
      const size = Math.ceil((await treeBytes(path.join(temp, 'bundle', 'rootfs'))) / MIB);
      await writeFile(path.join(temp, 'bundle', META), JSON.stringify({ id, size, fetched: new Date().toISOString() }));
      await rename(path.join(temp, 'bundle'), path.join(this.options.dir, id));
      await this.protect(this.rootfsOf(id));
      return { id, type: this.options.type, size, status: 'complete' };
    } finally {
      this.pending.delete(id);
      await rm(temp, { recursive: true, force: true });
    }
  }

  /** Unmounts the base and removes it. */
  async remove(id: string): Promise<void> {
    const rootfs = this.rootfsOf(id);
    while (await isMountPoint(rootfs)) await this.run('umount', [rootfs], AbortSignal.timeout(30_000));
    // Renamed out of the way first: the image is gone at once, the removal may take longer.
    const doomed = path.join(this.options.dir, `.${id}${TEMP_MARK}deleted`);
    await rename(path.join(this.options.dir, id), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  private async sourceArgs(source: ContainerSource, temp: string, signal: AbortSignal): Promise<string[]> {
    if (source.transport === 'docker') return [`--src-tls-verify=${source.tlsVerify}`, `docker:${source.reference}`];
    if (source.transport === 'oci') return [`oci:${source.dir}${source.ref ? `:${source.ref}` : ''}`];
    if (source.url.protocol === 'file:') return [`oci-archive:${decodeURIComponent(source.url.pathname)}`];
    // An archive over http(s) is received first (bounded), then read by skopeo like a local one.
    const archive = path.join(temp, 'archive.tar');
    const opened = await openSource(source.url, this.options.policy, signal);
    if (opened.total !== undefined && opened.total > this.options.maxBytes) {
      opened.stream.destroy();
      throw new Error(`the archive is ${opened.total} bytes, over the limit of ${this.options.maxBytes / MIB} MiB (maxImageSizeMiB)`);
    }
    let received = 0;
    opened.stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > this.options.maxBytes) opened.stream.destroy(new Error(`the archive is over the limit of ${this.options.maxBytes / MIB} MiB (maxImageSizeMiB)`));
    });
    await pipeline(opened.stream, createWriteStream(archive), { signal });
    return [`oci-archive:${archive}`];
  }

  /** A read-only bind mount of the base onto itself: even root on the host cannot write through it by mistake. */
  private async protect(rootfs: string): Promise<void> {
    if (process.getuid?.() !== 0 || (await isMountPoint(rootfs))) return;
    await this.run('mount', ['--bind', rootfs, rootfs], AbortSignal.timeout(30_000));
    await this.run('mount', ['-o', 'remount,bind,ro', rootfs], AbortSignal.timeout(30_000));
  }

  /** Runs a tool; its error message without this host's paths (it ends up in a job's message). */
  private run(file: string, args: string[], signal: AbortSignal, temp?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(file, args, { signal, maxBuffer: 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (error, _stdout, stderr) => {
        if (!error) return resolve();
        if (signal.aborted) return reject(signal.reason);
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return reject(new Error(`${path.basename(file)} is not installed on this host; install it (Debian package ${path.basename(file)}) to fetch container images`));
        let message = (stderr || error.message).trim().split('\n').slice(-3).join('; ');
        for (const hidden of [temp, this.options.dir].filter((p): p is string => !!p)) message = message.split(hidden).join('…');
        reject(new Error(`${path.basename(file)} failed: ${message.replace(/^time="[^"]*" level=\w+ msg="?/, '').slice(0, 500)}`));
      });
    });
  }

  private async describe(id: string): Promise<ContainerImageEntry | undefined> {
    const meta = await readFile(path.join(this.options.dir, id, META), 'utf8').catch(() => undefined);
    if (!meta) return undefined;
    const { size } = JSON.parse(meta) as { size?: number };
    return { id, type: this.options.type, size: size ?? 0, status: 'complete' };
  }

  private pendingEntry(id: string): ContainerImageEntry {
    return { id, type: this.options.type, size: 0, status: 'pending' };
  }
}

/** Bytes of the regular files under `dir` (links not followed). */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(full);
    else if (entry.isFile()) total += (await lstat(full)).size;
  }
  return total;
}

/** Whether `dir` is a mount point, from /proc/self/mountinfo (field 5, octal escapes). */
export async function isMountPoint(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => {
    const point = line.split(' ')[4];
    return point !== undefined && point.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) === dir;
  });
}
