/**
 * What LXC holds of a test's containers, and their removal whatever the
 * test did: each container by name (lxc-stop -k, its folder, its cgroups),
 * so parallel suites never touch each other's.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CGROUPS = '/sys/fs/cgroup';

/** The LXC name the backend gives a guest. */
export const containerNameOf = (guestId: string): string => `hk-${guestId}`;

/** Every cgroup (any v1 controller or the v2 mount) whose name mentions `name`. */
export async function cgroupsOf(name: string): Promise<string[]> {
  const found: string[] = [];
  for (const controller of await readdir(CGROUPS)) {
    const entries = await readdir(path.join(CGROUPS, controller)).catch(() => [] as string[]);
    for (const entry of entries) if (entry.includes(name)) found.push(path.join(CGROUPS, controller, entry));
  }
  return found;
}

/** Mount points whose source or target mentions `text`. */
export async function mountsMentioning(text: string): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(text));
}

/** Stops and removes every container under `lxcPath` (a test's), by name, with its cgroups. */
export async function removeContainers(lxcPath: string): Promise<void> {
  const names = (await readdir(lxcPath).catch(() => [] as string[])).filter((n) => n.startsWith('hk-'));
  for (const name of names) {
    await run('lxc-stop', ['-k', '-n', name, '-P', lxcPath]).catch(() => undefined);
    await rm(path.join(lxcPath, name), { recursive: true, force: true });
    for (const cgroup of await cgroupsOf(name)) await removeTree(cgroup);
  }
}

async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await removeTree(path.join(dir, entry.name));
  await rmdir(dir).catch(() => undefined);
}

/** The host pid of a running container's init (pid 1 inside), from its pids cgroup. */
export async function initPidOf(name: string): Promise<number | undefined> {
  const procs = await readFile(path.join(CGROUPS, 'pids', `lxc.payload.${name}`, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const line of procs.split('\n').filter(Boolean)) {
    const status = await readFile(`/proc/${line}/status`, 'utf8').catch(() => '');
    if (/^NSpid:\s*\d+\s+1$/m.test(status)) return Number(line);
  }
  return undefined;
}
