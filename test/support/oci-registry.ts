/**
 * Container images for tests, built offline and served the way operators
 * fetch them: an OCI image made from the host's busybox-static with umoci
 * (entrypoint, cmd, stop signal in its config), Debian's distribution
 * registry (`docker-registry`) on a free loopback port with its storage in
 * the test's temp dir, and skopeo pushing the image there.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './agent.js';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** busybox applets linked in the image's /bin. */
const APPLETS = ['sh', 'sleep', 'ls', 'cat', 'id', 'kill', 'true', 'ps', 'touch', 'echo'];

export interface BusyboxImage {
  /** An OCI layout folder and tag: `oci:${layout}:${tag}` is the skopeo source. */
  layout: string;
  tag: string;
}

/** Builds an OCI image (busybox-static as /bin) in `layoutsDir/name`, with the given config. */
export async function buildBusyboxImage(
  workDir: string,
  layoutsDir: string,
  name: string,
  tag: string,
  config: { entrypoint?: string[]; cmd?: string[]; stopSignal?: string },
): Promise<BusyboxImage> {
  const rootfs = path.join(workDir, `rootfs-${name}`);
  await mkdir(path.join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  for (const tool of APPLETS) await symlink('busybox', path.join(rootfs, 'bin', tool));
  await mkdir(layoutsDir, { recursive: true });
  const layout = path.join(layoutsDir, name);
  const image = `${layout}:${tag}`;
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  await run('umoci', ['insert', '--image', image, rootfs, '/']);
  const args: string[] = [];
  for (const e of config.entrypoint ?? []) args.push('--config.entrypoint', e);
  for (const c of config.cmd ?? []) args.push('--config.cmd', c);
  if (config.stopSignal) args.push('--config.stopsignal', config.stopSignal);
  if (args.length) await run('umoci', ['config', '--image', image, ...args]);
  return { layout, tag };
}

export interface LoopbackRegistry {
  port: number;
  /** Pushes an image as `docker://127.0.0.1:PORT/name:tag`; returns that source. */
  push(image: BusyboxImage, name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Debian's docker-registry on 127.0.0.1 and a free port, its storage under `workDir/registry`. */
export async function startRegistry(workDir: string): Promise<LoopbackRegistry> {
  const port = await freePort();
  const config = path.join(workDir, 'registry.yml');
  await writeFile(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(workDir, 'registry')}\nhttp:\n  addr: 127.0.0.1:${port}\nlog:\n  level: error\n`);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  };
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined))?.status === 200, 30_000, 'the registry to answer');
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    async push(image, name) {
      const dest = `docker://127.0.0.1:${port}/${name}:${image.tag}`;
      await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${image.layout}:${image.tag}`, dest]);
      return dest;
    },
    stop,
  };
}

/** Unmounts every mount under `dir` (deepest first): the read-only bases a test left. */
export async function unmountUnder(dir: string): Promise<void> {
  const points = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((p) => p?.startsWith(dir + '/'));
  for (const point of points.sort().reverse()) await run('umount', [point]).catch(() => undefined);
}
