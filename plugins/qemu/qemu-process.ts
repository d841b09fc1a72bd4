/**
 * The QEMU process of a guest, as the operating system sees it: launched
 * daemonized (own session, pidfile written once the machine is set up, so
 * the agent can exit and come back), recognised again by its pidfile and
 * command line, and stopped with signals when QMP cannot do it.
 */
import { spawn } from 'node:child_process';
import { open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RunDir } from './run-dir.js';

/** Starts QEMU with -daemonize and returns the daemon's pid once it is set up. */
export async function launchQemu(binary: string, args: string[], runDir: RunDir): Promise<number> {
  await rm(runDir.pidFile, { force: true });
  const stderr = await open(runDir.stderrLog, 'w');
  let code: number | null;
  let signalName: NodeJS.Signals | null;
  try {
    // -daemonize makes QEMU fork, setsid and exit in the parent once the
    // machine is initialised; the parent's exit status says whether it worked.
    const child = spawn(binary, args, { cwd: runDir.dir, stdio: ['ignore', stderr.fd, stderr.fd], detached: true });
    [code, signalName] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new Error(`${binary} not found; install qemu-system-x86 (see docs/qemu.md)`) : error),
      );
      child.once('exit', (c, s) => resolve([c, s]));
    });
  } finally {
    await stderr.close();
  }
  const printed = (await readFile(runDir.stderrLog, 'utf8').catch(() => '')).trim();
  if (code !== 0) {
    throw new Error(`${binary} failed to start (${signalName ?? `exit ${code}`}): ${runDir.redact(printed) || 'no message'} [log: qemu.stderr.log in its run dir]`);
  }
  const pid = await readPidFile(runDir);
  if (!pid) throw new Error(`${binary} started but wrote no pidfile (qemu.pid in its run dir): ${runDir.redact(printed)}`);
  return pid;
}

export async function readPidFile(runDir: RunDir): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(runDir.pidFile, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while the process exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * True when `pid` is the QEMU of this run dir. Pids are reused, so a pidfile
 * alone could point at an unrelated process after a host reboot.
 */
export async function isGuestProcess(pid: number, runDir: RunDir): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const pidFileArg = argv[argv.indexOf('-pidfile') + 1];
    if (!pidFileArg || !(await isAlive(pid))) return false;
    if (pidFileArg === runDir.pidFile) return true;
    // The data dir may be reached by another path now (symlink, bind mount):
    // the same pidfile is the same inode. Relative paths are QEMU's cwd, the run dir.
    const [theirs, ours] = await Promise.all([stat(path.resolve(runDir.dir, pidFileArg)), stat(runDir.pidFile)]);
    return theirs.dev === ours.dev && theirs.ino === ours.ino;
  } catch {
    return false;
  }
}

/** Finds the running QEMU of a run dir, if any. */
export async function findGuestProcess(runDir: RunDir): Promise<number | undefined> {
  const pid = await readPidFile(runDir);
  return pid && (await isGuestProcess(pid, runDir)) ? pid : undefined;
}

/** Resolves true once the process is gone, false if it still runs after timeoutMs. */
export async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isAlive(pid))) return true;
    if (Date.now() >= deadline || signal?.aborted) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL if it still runs after graceMs. */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  if (!sendSignal(pid, 'SIGTERM')) return;
  if (await waitForExit(pid, graceMs)) return;
  sendSignal(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5000))) throw new Error(`QEMU process ${pid} survived SIGKILL`);
}

function sendSignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}
