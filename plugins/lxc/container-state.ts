/**
 * What a container is doing, read from files rather than by forking
 * lxc-info (10-20 ms a call): LXC's monitor pid file (written by
 * `lxc-start -p`, removed by LXC when the container stops), the v1 freezer
 * cgroup's state, and its init's pid (the process whose pid inside is 1).
 */
import { readFile, rm } from 'node:fs/promises';
import type { ContainerPaths } from './container-paths.js';

export type RunState = 'stopped' | 'running' | 'frozen';

/** The pid of LXC's monitor of this container, if it runs. */
export async function monitorPid(paths: ContainerPaths): Promise<number | undefined> {
  const text = await readFile(paths.monitorPidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  // A stale file (host reboot, monitor killed) names another process or none.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
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
  const freezer = await readFile(`${paths.cgroup('freezer')}/freezer.state`, 'utf8').catch(() => undefined);
  if (freezer === undefined) return 'stopped';
  return freezer.trim() === 'THAWED' ? 'running' : 'frozen';
}

/** The host pid of the container's init (pid 1 in its namespace), if it runs. */
export async function initPid(paths: ContainerPaths): Promise<number | undefined> {
  const procs = await readFile(`${paths.cgroup('pids')}/cgroup.procs`, 'utf8').catch(() => '');
  for (const line of procs.split('\n')) {
    const pid = Number.parseInt(line, 10);
    if (!Number.isSafeInteger(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
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
