/**
 * A QEMU's cpu metrics from /proc, for backends whose QEMU runs on this
 * host: the process's own CPU time (all its threads: vCPUs, I/O, emulation)
 * and each vCPU thread's time, in the mistify shape (one entry per vCPU,
 * cpu_time the whole process's, the same on every entry). The caller knows
 * the pid and the vCPU thread ids (QMP query-cpus-fast, libvirt's status XML).
 *
 * The files are read synchronously: the kernel makes them up on read, so the
 * read never waits for a disk, and it takes microseconds, where an
 * asynchronous readFile is four thread-pool round trips (open, fstat, read,
 * close), which under 50 concurrent requests cost more than the read itself.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { GuestCpuMetrics } from '../wire-types.js';

let clockTicks: number | undefined;
/** Kernel clock ticks per second, the unit of utime/stime in /proc stat files. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100; // Linux's USER_HZ on every architecture QEMU x86 hosts run.
    }
  }
  return clockTicks;
}

/** What a /proc stat file says about CPU use and identity. */
export interface ProcStat {
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  /** When the process started, in clock ticks after boot: with the pid, it names one process for good (pids are reused). */
  startTicks: number;
}

/**
 * Parses the text of a /proc/PID/stat or /proc/PID/task/TID/stat file (for
 * callers that read it their own way, e.g. from a file kept open).
 */
export function parseProcStat(text: string): ProcStat {
  // Fields after the ")" of the command name (which may hold spaces): state is field 3, utime 14, stime 15, starttime 22.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond(), startTicks: Number(fields[19]) };
}

/** The on-CPU time in a /proc/.../schedstat file's text (its first field, nanoseconds), in seconds. */
export function parseSchedstatSeconds(text: string): number {
  return Number(text.slice(0, text.indexOf(' '))) / 1e9;
}

/** Reads a /proc/.../stat file; throws (ENOENT) when the process or thread is gone. */
export function readProcStat(file: string): ProcStat {
  return parseProcStat(readFileSync(file, 'utf8'));
}

/** A thread's on-CPU time in seconds: schedstat has nanoseconds, stat only ticks. */
export function threadCpuSeconds(pid: number, tid: number): number {
  let schedstat: string;
  try {
    schedstat = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
  } catch {
    // Kernels without schedstats; a thread that is gone throws here.
    return readProcStat(`/proc/${pid}/task/${tid}/stat`).cpuSeconds;
  }
  return parseSchedstatSeconds(schedstat);
}

/**
 * cpu metrics of QEMU process `pid` with vCPU threads `vcpuThreads` (in vCPU
 * order). Throws when the process or one of the threads is gone (the caller's
 * thread list is stale). `startTicks`, when given, must match the process's
 * start time, so a pid reused by another process is not read as the guest.
 */
export function procCpuMetrics(pid: number, vcpuThreads: readonly number[], startTicks?: number): GuestCpuMetrics[] {
  const proc = readProcStat(`/proc/${pid}/stat`);
  if (startTicks !== undefined && proc.startTicks !== startTicks) throw new Error(`process ${pid} is not the one it was (started at tick ${proc.startTicks}, not ${startTicks})`);
  return vcpuThreads.map((tid) => ({ cpu_time: proc.cpuSeconds, vcpu_time: threadCpuSeconds(pid, tid) }));
}
