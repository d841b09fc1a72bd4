/**
 * What LXC holds of a test's containers, and their removal whatever the
 * test did: each container by name (thawed, lxc-stop -k, its folder, its
 * cgroups), so parallel suites never touch each other's. The folders of a
 * test that runs an agent with container guests, and their teardown.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir } from './agent.js';
import { unmountUnder } from './oci-registry.js';

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
    // A frozen container's tasks cannot die until thawed (a suspend, or a snapshot cut short).
    await writeFile(path.join(CGROUPS, 'freezer', `lxc.payload.${name}`, 'freezer.state'), 'THAWED').catch(() => undefined);
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

/** A container test's folders: `work` and its data dir searchable by others (o+x, no listing), which unprivileged containers' mapped root needs to walk down to its layer and image. */
export interface ContainerTestDirs {
  work: string;
  /** The agent's --data-dir. */
  dataDir: string;
  /** Where buildBusyboxImage writes OCI layouts. */
  layouts: string;
  /** The container bases (containerConfig points the images and LXC plugins here). */
  basesDir: string;
  /** The LXC plugin's containers (its `lxc-* -P`). */
  lxcPath: string;
}

export async function makeContainerTestDirs(prefix: string): Promise<ContainerTestDirs> {
  const work = await makeTempDir(prefix);
  await chmod(work, 0o711);
  const dataDir = path.join(work, 'data');
  await mkdir(dataDir, { mode: 0o711 });
  return { work, dataDir, layouts: path.join(work, 'layouts'), basesDir: path.join(work, 'bases'), lxcPath: path.join(dataDir, 'plugins', 'lxc', 'containers') };
}

/** What a container test may have started. */
export interface ContainerTestParts {
  agent?: { stop(): Promise<unknown> };
  registry?: { stop(): Promise<void> };
}

/** Removes, whatever the test did, what it started: the agent, every container by name, the registry, the bases' mounts, the folders. */
export async function removeContainerTest(dirs: ContainerTestDirs | undefined, parts: ContainerTestParts = {}): Promise<void> {
  await parts.agent?.stop().catch(() => undefined);
  if (dirs) await removeContainers(dirs.lxcPath);
  await parts.registry?.stop();
  if (!dirs) return;
  await unmountUnder(dirs.work);
  await removeDir(dirs.work);
}
