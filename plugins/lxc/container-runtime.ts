/**
 * Running one container: start (lxc-start, the image's command after `--`),
 * signals to its init sent in process (no lxc-stop fork), the v1 freezer
 * written directly, and waits that end on LXC's own state events (one
 * lxc-monitor for all containers) with a cheap file check as a fallback,
 * should an event be lost.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as setImmediatePromise, setTimeout as sleep } from 'node:timers/promises';
import { CGROUP_ROOT, type ContainerPaths } from './container-paths.js';
import { initPid, monitorPid, runState } from './container-state.js';
import type { LxcMonitor } from './lxc-monitor.js';
import { redactPaths, type LxcTools } from './lxc-tools.js';

/** How often a stop wait looks at the monitor process itself (a /proc read): LXC's event may come late, or after the monitor ended. */
const POLL_MS = 5;

/** Looks at a FREEZING freezer between event-loop turns before polling it every millisecond. */
const FREEZE_QUICK_LOOKS = 10;

/** How long a kill lets a monitor whose container has no init finish ending it, before LXC's forced stop. */
const ENDING_WAIT_MS = 2000;

/** How long a start waits for the monitor of the container's last run to end. */
const MONITOR_EXIT_MS = 5000;

export class ContainerRuntime {
  constructor(
    private readonly tools: LxcTools,
    private readonly monitor: LxcMonitor,
  ) {}

  /** Starts the container with `args` as its init; resolves once LXC reports it running. */
  async start(paths: ContainerPaths, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // A container just stopped may still have its monitor finishing up (a restart, a reboot): LXC would take it for running.
    await this.monitorEnded(paths);
    writeFileSync(paths.log, ''); // the log of this start only: exitReason reads its last "ended on" line (sync: an empty write, page cache only)
    // A monitor killed under a container leaves its cgroups, and LXC would pick "name-1": remove them first.
    if (existsSync(paths.cgroup('freezer'))) await removeLeftoverCgroups(paths);
    try {
      // -d returns once LXC reports the container running. Its RUNNING event, relayed later, is not waited
      // for: ContainerWatch compares any event with the container as it is before it records anything.
      await this.tools.run('lxc-start', ['-n', paths.name, '-P', paths.lxcPath, '-d', '-p', paths.monitorPidFile, '--', ...args], timeoutMs, signal);
    } catch (error) {
      const logged = await lastError(paths.log);
      throw new Error(`${(error as Error).message}${logged ? `; LXC's log: ${logged}` : ''}`);
    }
  }

  /** Waits for the LXC monitor of the container's last run to end (it tidies up after the container stopped). */
  async monitorEnded(paths: ContainerPaths): Promise<void> {
    const previous = await monitorPid(paths);
    for (const deadline = Date.now() + MONITOR_EXIT_MS; previous !== undefined && isAlive(previous); ) {
      if (Date.now() > deadline) throw new Error(`LXC's monitor of the container's last run (pid ${previous}) has not ended within ${MONITOR_EXIT_MS / 1000} s`);
      await sleep(POLL_MS);
    }
  }

  /** Sends `sig` to the container's init; false when it does not run. A frozen container is thawed first (signals wait for a thaw). */
  async signalInit(paths: ContainerPaths, sig: NodeJS.Signals): Promise<boolean> {
    if ((await runState(paths)) === 'frozen') await this.setFrozen(paths, false);
    const pid = await initPid(paths);
    if (pid === undefined) return false;
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A wait for the container to stop, made before the signal that stops it:
   * stopped means LXC is done with it, as LXC itself says STOPPED: its
   * cgroups are gone, the container's (a cgroup goes only once no process
   * is left in it) and its monitor's (the monitor moves itself out, a cgroup
   * migration of 1-20 ms, then removes it and reports STOPPED), or the LXC
   * monitor running now has ended. The monitor's tidy-up after that (its
   * pid file, its exit: up to tens of ms more) is not waited for: nothing of
   * the container is left by then. An event only wakes the check up, so a
   * late event of an earlier stop cannot end it.
   */
  async stopped(paths: ContainerPaths): Promise<StopWait> {
    const monitor = await monitorPid(paths);
    const event = this.monitor.waitFor(paths.name, ['STOPPED', 'ABORTING']);
    const gone = (): boolean => monitor === undefined || !isAlive(monitor) || lxcCgroupsGone(paths);
    return {
      cancel: event.cancel,
      wait: async (timeoutMs: number, signal?: AbortSignal): Promise<boolean> => {
        const deadline = Date.now() + timeoutMs;
        // The event wakes the check once; after it, polling only (a settled promise would spin).
        let wake: Promise<unknown> | undefined = event.done.then(() => (wake = undefined));
        try {
          while (!gone()) {
            const left = deadline - Date.now();
            if (left <= 0 || signal?.aborted) return false;
            const nap = sleep(Math.min(POLL_MS, left));
            await (wake ? Promise.race([wake, nap]) : nap);
          }
          return true;
        } finally {
          event.cancel();
        }
      },
    };
  }

  /**
   * Kills the container (SIGKILL to init) and waits until LXC is done with
   * it (stopped()); lxc-stop -k if that does not do it. false when it was
   * not running.
   */
  async kill(paths: ContainerPaths, timeoutMs: number): Promise<boolean> {
    // No monitor pid file and no cgroup of it or of its monitor anywhere: nothing of it runs (a
    // stopped container's delete reads no /proc). The pid file too: a container whose cgroups
    // LXC had to name otherwise (<name>-1) is still found, and killed.
    if (!existsSync(paths.monitorPidFile) && lxcCgroupsGone(paths)) return false;
    const wait = await this.stopped(paths);
    if (!(await this.signalInit(paths, 'SIGKILL'))) {
      if ((await monitorPid(paths)) === undefined) {
        wait.cancel();
        return false;
      }
      // A monitor without an init: ending a container that stopped (its cgroups go within ms), else starting one: LXC's own forced stop.
      if (!(await wait.wait(ENDING_WAIT_MS))) await this.tools.run('lxc-stop', ['-n', paths.name, '-P', paths.lxcPath, '-k'], timeoutMs).catch(() => undefined);
      return true;
    }
    if (!(await wait.wait(timeoutMs))) {
      await this.tools.run('lxc-stop', ['-n', paths.name, '-P', paths.lxcPath, '-k'], timeoutMs);
    }
    return true;
  }

  /**
   * Freezes or thaws the container's cgroup (the v1 freezer) and resolves
   * once the kernel reports the state reached. The cgroupfs file is written
   * and read synchronously (kernel memory, microseconds; see
   * container-state.ts); a freeze is FREEZING until every task has stopped,
   * usually at the first look: it is looked at again after yielding to the
   * event loop a few times, then every millisecond.
   */
  async setFrozen(paths: ContainerPaths, frozen: boolean, timeoutMs = 10_000): Promise<void> {
    const file = path.join(paths.cgroup('freezer'), 'freezer.state');
    const want = frozen ? 'FROZEN' : 'THAWED';
    try {
      writeFileSync(file, want);
    } catch (error) {
      // Its cgroup went with the container (it stopped since the stage looked): said without the host path.
      throw new Error(`the container's freezer could not be set to ${want} (${(error as NodeJS.ErrnoException).code ?? 'error'}): has the container stopped?`);
    }
    const deadline = Date.now() + timeoutMs;
    for (let looks = 1; readFileSync(file, 'utf8').trim() !== want; looks++) {
      if (Date.now() > deadline) throw new Error(`the container's freezer did not reach ${want} within ${timeoutMs / 1000} s`);
      await (looks <= FREEZE_QUICK_LOOKS ? setImmediatePromise() : sleep(1));
    }
  }
}

export interface StopWait {
  /** true once the container stopped, false when `timeoutMs` passed first. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  cancel(): void;
}

/** Whether process `pid` exists and has not ended (a zombie nobody reaped yet has). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

/** The cgroup hierarchies mounted under CGROUP_ROOT (the v1 controllers and the v2 mount), read once. */
let hierarchies: string[] | undefined;

/**
 * Whether the container's cgroups and its LXC monitor's are gone from every
 * hierarchy (about 20 stat calls on cgroupfs: kernel memory, microseconds,
 * done synchronously).
 */
export function lxcCgroupsGone(paths: ContainerPaths): boolean {
  hierarchies ??= readdirSync(CGROUP_ROOT);
  return hierarchies.every((h) => !existsSync(path.join(CGROUP_ROOT, h, `lxc.payload.${paths.name}`)) && !existsSync(path.join(CGROUP_ROOT, h, `lxc.monitor.${paths.name}`)));
}

/** Removes the container's cgroups (payload and monitor, with any "-N" twins) in every v1 controller: empty ones only. */
export async function removeLeftoverCgroups(paths: ContainerPaths): Promise<void> {
  const controllers = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  const names = [`lxc.payload.${paths.name}`, `lxc.monitor.${paths.name}`];
  await Promise.all(
    controllers.map(async (controller) => {
      const dir = path.join(CGROUP_ROOT, controller);
      const entries = await readdir(dir).catch(() => [] as string[]);
      for (const entry of entries) {
        if (!names.some((n) => entry === n || (entry.startsWith(`${n}-`) && /^\d+$/.test(entry.slice(n.length + 1))))) continue;
        await removeTree(path.join(dir, entry));
      }
    }),
  );
}

/** rmdir a cgroup and its children, deepest first (a cgroup with tasks stays: EBUSY). */
async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await removeTree(path.join(dir, entry.name));
  await rmdir(dir).catch(() => undefined);
}

/** LXC's last ERROR line of this start, without host paths (it reaches a job's message). */
async function lastError(log: string): Promise<string> {
  const text = await readFile(log, 'utf8').catch(() => '');
  const line = text.split('\n').filter((l) => / ERROR /.test(l) && !/lxc_start|wait_on_daemonized_start|sync_wait|__lxc_start/.test(l))[0] ?? '';
  const message = line.replace(/^.* - [^ ]+:\d+ - /, '').trim();
  return redactPaths(message).slice(0, 300);
}
