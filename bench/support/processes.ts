/**
 * Every process the bench starts goes through here, so that each one is
 * stopped by its own PID however the run ends (normal end, error, Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

const live = new Set<ChildProcess>();

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `node script args`, stdout and stderr to `logFile` (a file, never a
 * pipe nobody drains: the agent logs one line per request).
 */
export function spawnNode(script: string, args: string[], logFile: string, options: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Spawned {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  return track(child);
}

/** Spawns a command whose stdout the caller reads (autocannon --json). */
export function spawnCaptured(command: string, args: string[]): Spawned & { stdout: Promise<string>; stderr: Promise<string> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (stream: NodeJS.ReadableStream) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      stream.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  const stdout = collect(child.stdout!);
  const stderr = collect(child.stderr!);
  return { ...track(child), stdout, stderr };
}

function track(child: ChildProcess): Spawned {
  live.add(child);
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal);
    });
    child.once('error', () => {
      live.delete(child);
      resolve('spawn error');
    });
  });
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  if (child.pid === undefined) throw new Error(`could not start ${child.spawnfile}`);
  return { child, pid: child.pid, exited, stop };
}

/** Kills every process still alive (by its PID), for error paths and signals. */
export function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export { freePort } from '../../test/support/free-port.js';

/**
 * Polls `url` until it answers 200, at most `timeoutMs`; resolves with the
 * milliseconds from `since` (performance.now()) to that first 200.
 */
export async function waitFor200(url: string, headers: Record<string, string>, timeoutMs: number, since: number, exited?: Promise<unknown>): Promise<number> {
  let gone = false;
  void exited?.then(() => (gone = true));
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (gone) throw new Error(`process exited before ${url} answered`);
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - since;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

/** Resident set size of a process in bytes (Linux /proc), or undefined. */
export async function rssOf(pid: number): Promise<{ rss: number; hwm: number; anon: number; file: number } | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    // RssFile is mostly the node executable's own code, shared by every Node process on the host.
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc). */
export async function cpuMsOf(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}
