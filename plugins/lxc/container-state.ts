/**
 * What a container is doing, read from files rather than by forking
 * lxc-info (10-20 ms a call): LXC's monitor pid file (written by
 * `lxc-start -p`, removed by LXC when the container stops), the v1 freezer
 * cgroup's state, and its init's pid (the process whose pid inside is 1).
 *
 * These few-byte files are read synchronously: /proc and cgroupfs are
 * kernel memory (a read never waits on a disk) and the pid file is in the
 * page cache, so each read takes microseconds, where an async readFile is
 * four round trips to libuv's thread pool (~0.1 ms each on a quiet host,
 * far more on a loaded one), and every action of a container reads them.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import type { ContainerPaths } from './container-paths.js';

export type RunState = 'stopped' | 'running' | 'frozen';

/** Whether the plugin made this container (its folder is there). */
export function hasContainerFolder(paths: ContainerPaths): boolean {
  return statSync(paths.dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** The pid of LXC's monitor of this container, if it runs. */
export async function monitorPid(paths: ContainerPaths): Promise<number | undefined> {
  const text = readOr(paths.monitorPidFile, '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  // A stale file (host reboot, monitor killed) names another process or none.
  const cmdline = readOr(`/proc/${pid}/cmdline`, '');
  if (cmdline.startsWith('[lxc monitor]') && cmdline.includes(paths.name)) return pid;
  await rm(paths.monitorPidFile, { force: true });
  return undefined;
}

/**
 * stopped, running or frozen (suspended). A monitor whose container's
 * cgroup is gone is one finishing its clean-up after the container ended:
 * stopped.
 */
export async function runState(paths: ContainerPaths): Promise<RunState> {
  if ((await monitorPid(paths)) === undefined) return 'stopped';
  const freezer = readOr(`${paths.cgroup('freezer')}/freezer.state`, undefined);
  if (freezer === undefined) return 'stopped';
  return freezer.trim() === 'THAWED' ? 'running' : 'frozen';
}

/** The host pid of the container's init (pid 1 in its namespace), if it runs. */
export async function initPid(paths: ContainerPaths): Promise<number | undefined> {
  const procs = readOr(`${paths.cgroup('pids')}/cgroup.procs`, '');
  for (const line of procs.split('\n')) {
    const pid = Number.parseInt(line, 10);
    if (!Number.isSafeInteger(pid)) continue;
    const status = readOr(`/proc/${pid}/status`, '');
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return pid;
  }
  return undefined;
}

/**
 * How the container's init ended, from LXC's log of its last start: a
 * signal or a non-zero exit is a crash; a zero exit (or none logged) is the
 * container shutting itself down.
 */
export async function exitReason(paths: ContainerPaths): Promise<{ state: 'shutdown' | 'crashed'; reason: string }> {
  const log = await readFile(paths.log, 'utf8').catch(() => '');
  const ended = [...log.matchAll(/Child <\d+> ended on (signal|error) ([^\n]*)/g)].at(-1);
  if (!ended) return { state: 'shutdown', reason: 'the container stopped by itself (its init exited 0)' };
  const how = ended[1] === 'signal' ? `was killed by signal ${ended[2].trim()}` : `exited with status ${ended[2].trim().replace(/[()]/g, '')}`;
  return { state: 'crashed', reason: `the container stopped: its init ${how}` };
}

/** A small file's text, or `otherwise` when it cannot be read (gone: the container or process ended). */
function readOr<T extends string | undefined>(file: string, otherwise: T): string | T {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return otherwise;
  }
}
