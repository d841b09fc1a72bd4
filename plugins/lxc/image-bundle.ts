/**
 * What a container runs, from its image: the bundle the images plugin
 * unpacked with umoci (`<containerImagesDir>/<image>/config.json`, an OCI
 * runtime config) gives the process (entrypoint + cmd as `args`, env, cwd,
 * user) and the image's stop signal (an annotation umoci copies from the
 * image config). An image with no command is a system image: /sbin/init.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { constants as os } from 'node:os';
import { StageRejection, invalidImageName } from '../../core/contract/index.js';

export interface ContainerProcess {
  /** argv of the container's init (pid 1 inside). */
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  /** The signal that asks it to stop (the image's, else SIGPWR, LXC's halt signal). */
  stopSignal: NodeJS.Signals;
  /** True for /sbin/init (no entrypoint or cmd in the image). */
  system: boolean;
}

export interface ImageBundle {
  /** The read-only base: the overlay's lower layer. */
  rootfs: string;
  process: ContainerProcess;
}

const STOP_SIGNAL = 'org.opencontainers.image.stopSignal';

/** The image's base and process; a 400 when `image` is no container image here. */
export async function readImageBundle(imagesDir: string, image: string): Promise<ImageBundle> {
  const bad = invalidImageName(image);
  if (bad) throw new StageRejection(400, `image "${image}" must be a container image id (it ${bad})`);
  const dir = path.join(imagesDir, image);
  let text: string;
  try {
    // Read in one call rather than four thread-pool round trips: a few KiB, read at every start of a container.
    text = readFileSync(path.join(dir, 'config.json'), 'utf8');
  } catch {
    throw new StageRejection(400, `image "${image}" is no container image on this host; POST /images with "type": "container" fetches one, GET /images?type=container lists them`);
  }
  return { rootfs: path.join(dir, 'rootfs'), process: processOf(JSON.parse(text) as OciConfig) };
}

interface OciConfig {
  process?: { args?: string[]; env?: string[]; cwd?: string; user?: { uid?: number; gid?: number } };
  annotations?: Record<string, string>;
}

function processOf(config: OciConfig): ContainerProcess {
  const p = config.process ?? {};
  const args = (p.args ?? []).filter((a) => typeof a === 'string');
  const system = args.length === 0;
  const named = config.annotations?.[STOP_SIGNAL] ?? '';
  return {
    args: system ? ['/sbin/init'] : args,
    env: (p.env ?? []).filter((e) => typeof e === 'string' && e.includes('=') && !e.includes('\n')),
    cwd: p.cwd || '/',
    uid: p.user?.uid ?? 0,
    gid: p.user?.gid ?? 0,
    stopSignal: signalNamed(named) ?? 'SIGPWR',
    system,
  };
}

/** "SIGTERM", "TERM" or "15" as a signal name; undefined when it is none. */
function signalNamed(text: string): NodeJS.Signals | undefined {
  const t = text.trim().toUpperCase();
  if (!t) return undefined;
  if (/^\d+$/.test(t)) {
    const found = Object.entries(os.signals).find(([, n]) => n === Number(t));
    return found ? (found[0] as NodeJS.Signals) : undefined;
  }
  const name = t.startsWith('SIG') ? t : `SIG${t}`;
  return Object.hasOwn(os.signals, name) ? (name as NodeJS.Signals) : undefined;
}
