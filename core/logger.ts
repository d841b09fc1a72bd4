/**
 * Structured logs: one JSON object per line on stdout (pino), written so
 * that logging can never stall the agent.
 *
 * - Lines go to pino's own asynchronous destination (sonic-boom), written
 *   in batches (its minLength, and a periodic flush for a quiet agent),
 *   as Buffers (its buffer mode).
 * - Its buffer is bounded (`LOG_BUFFER_BYTES`): when the reader of stdout
 *   stops reading, new lines are dropped and counted (`dropped`), never
 *   queued without limit; once the reader catches up, one warning line says
 *   how many were lost.
 * - stdout is written through a non-blocking descriptor (see
 *   nonBlockingDescriptor), so a full pipe answers EAGAIN (sonic-boom retries
 *   every 100 ms) instead of parking a libuv thread in write(2). A parked
 *   thread would make the process hang at exit forever, because Node joins
 *   its thread pool on exit.
 * - Nothing is flushed synchronously at exit unless it can be done without
 *   waiting: `close()` drains with a deadline, and the exit hook makes one
 *   non-blocking write; once the reader is gone (EPIPE), neither tries.
 */
import { constants, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { pino } from 'pino';
import sonicBoom from 'sonic-boom';
import type { Logger } from './contract/plugin-api.js';
import { LOG_BATCH, LogBatch } from './log-batch.js';
import { pendingBytes as waitingBytes, writeOnce } from './log-buffers.js';

export type AgentLogger = pino.Logger;

// CommonJS: Node's ESM loader exposes only the default export.
const { SonicBoom } = sonicBoom;

/** Log bytes held for a slow or stalled reader before lines are dropped. */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Lines are written once this many bytes have gathered (sonic-boom's
 * minLength), or by the periodic flush after `LOG_FLUSH_MS` at the latest:
 * under load one write(2) carries a few hundred lines. Each write is a
 * thread-pool round trip whose cost competes with serving: on GET
 * /guests/{id} at 50 connections, 64 KiB batches cost ~3 µs less CPU per
 * request than 8 KiB ones. A quiet agent's lines are late by at most the
 * flush interval.
 */
export const LOG_BATCH_BYTES = 64 * 1024;
/** The Buffer lines are encoded into: a batch plus room for the line that completes it. */
const BATCH_CAPACITY = LOG_BATCH_BYTES + 16 * 1024;
/** One write(2) at most this big (sonic-boom's maxWrite; it must exceed minLength). */
const LOG_MAX_WRITE_BYTES = 2 * LOG_BATCH_BYTES;
export const LOG_FLUSH_MS = 50;

/** The agent's log: the pino logger plus what the process needs to know of its output. */
export interface AgentLog {
  log: AgentLogger;
  /** Lines dropped so far because stdout was not read fast enough. */
  readonly dropped: number;
  /** Write out what is buffered, waiting at most `deadlineMs`; true when all of it was written. */
  close(deadlineMs: number): Promise<boolean>;
}

/** The asynchronous destination of the log lines (log-buffers.ts reads its state). `retry`: whether an EAGAIN is retried. */
export function newLogDestination(fd: number, retry: () => boolean): InstanceType<typeof SonicBoom> {
  return new SonicBoom({
    fd,
    sync: false,
    maxLength: LOG_BUFFER_BYTES,
    minLength: LOG_BATCH_BYTES,
    maxWrite: LOG_MAX_WRITE_BYTES,
    // Buffer mode: sonic-boom keeps each batch as a list of Buffers with its
    // byte count. In its string mode it appends every line to the batch's
    // string and measures that string's UTF-8 length again per line, which
    // flattens a string of up to 16 KiB per line: that copy, not the write,
    // was most of what an access-log line cost under load.
    contentMode: 'buffer',
    // EAGAIN (reader stalled): sonic-boom retries the same bytes every
    // 100 ms. At exit there is no retrying: the line is given up.
    retryEAGAIN: retry,
  });
}

export function createLogger(level: string, fd = 1): AgentLog {
  let dropped = 0;
  let droppedReported = 0;
  let exiting = false;
  const destination = newLogDestination(nonBlockingDescriptor(fd), () => !exiting);
  // pino hands the destination strings: each is encoded straight into the
  // current batch (log-batch.ts), which is handed to sonic-boom whole. The
  // access log encodes its line into the batch itself (LOG_BATCH).
  const writeBytes = destination.write.bind(destination) as unknown as (data: Buffer) => boolean;
  const batch = new LogBatch(LOG_BATCH_BYTES, BATCH_CAPACITY, writeBytes);
  (destination as unknown as { write(data: string | Buffer): boolean }).write = (data) => {
    if (typeof data !== 'string') {
      batch.sendOther(data);
      return true;
    }
    batch.writeString(data);
    return true;
  };
  (destination as unknown as Record<symbol, LogBatch>)[LOG_BATCH] = batch;
  // The periodic flush, only when lines wait: sonic-boom's own flushes every
  // interval, issuing an empty write(2) through the thread pool even when
  // the agent is idle.
  const pendingBytes = () => batch.used + waitingBytes(destination);
  setInterval(() => {
    if (pendingBytes() > 0 && !exiting) {
      batch.handOver();
      destination.flush();
    }
  }, LOG_FLUSH_MS).unref();
  // sonic-boom drops whole batches: the lines in it are what is counted.
  destination.on('drop', (dropped_: Buffer) => {
    dropped += linesIn(dropped_);
    batch.dropped(dropped_);
  });
  destination.on('write', (n: number) => batch.written(n));
  destination.on('drain', () => {
    if (dropped === droppedReported) return;
    const lost = dropped - droppedReported;
    droppedReported = dropped;
    log.warn({ dropped: lost, droppedTotal: dropped }, 'log lines dropped: stdout was not read fast enough');
  });
  // A closed reader (EPIPE) or an exit-time EAGAIN: logging stops, the agent does not.
  let readerGone = false;
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (error?.code === 'EPIPE') readerGone = true;
  });

  const log = pino(logLineFormat(level), destination);

  process.once('exit', () => {
    exiting = true;
    // Not sonic-boom's flushSync: on any error but EAGAIN (EPIPE: `agent | head`
    // after head exited) it sleeps and retries forever, so the process never ended.
    // The lines not yet handed over go last, in the same write (handing them
    // to sonic-boom now could start an asynchronous write that never ends).
    if (!readerGone) writeOnce(destination, batch.pending());
  });

  return {
    log,
    get dropped() {
      return dropped;
    },
    async close(deadlineMs: number): Promise<boolean> {
      const pending = () => pendingBytes() > 0;
      if (!pending()) return true;
      // Nobody reads any more: nothing will drain.
      if (readerGone) return false;
      // Lines below the batch size wait for the periodic flush: send them now.
      batch.handOver();
      destination.flush();
      return new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          destination.off('drain', onDrain);
          resolve(ok);
        };
        const onDrain = () => {
          if (!pending()) done(true);
        };
        const timer = setTimeout(() => done(false), deadlineMs);
        destination.on('drain', onDrain);
      });
    },
  };
}

/** Lines in a dropped batch (each ends with a newline). */
function linesIn(batch: Buffer): number {
  let lines = 0;
  for (let at = batch.indexOf(10); at !== -1; at = batch.indexOf(10, at + 1)) lines++;
  return Math.max(1, lines);
}

/**
 * pino's isoTime, formatted once per millisecond: under load many lines
 * share a millisecond, and Date#toISOString was a visible part of each line.
 */
function isoTimeCached(): () => string {
  let at = -1;
  let text = '';
  return () => {
    const now = Date.now();
    if (now !== at) {
      at = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}

/**
 * `fd`, or a descriptor for the same output, on which write(2) never waits.
 * Pipes, terminals and files are reopened through /proc as their own open
 * file description with O_NONBLOCK, so nothing else that shares `fd`
 * (stderr, the parent shell) changes. A socket (what `spawn` and systemd
 * give as stdout) cannot be reopened: O_NONBLOCK is set on `fd` itself, by
 * libuv opening it as a stream handle that is kept (closing it would close
 * `fd`) but never written to. No child process inherits the agent's stdout.
 */
function nonBlockingDescriptor(fd: number): number {
  try {
    if (fstatSync(fd).isSocket()) {
      socketHolds.push(new Socket({ fd, readable: false, writable: true }).unref());
      return fd;
    }
    // O_APPEND so that a regular file is appended to, never overwritten from 0.
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
  } catch {
    return fd;
  }
}

/** Stream handles that keep O_NONBLOCK on a socket stdout; never closed. */
const socketHolds: Socket[] = [];

/** What every log line carries and how: the same for every destination (tests log to memory). */
export function logLineFormat(level: string): pino.LoggerOptions {
  return {
    level,
    base: { name: 'hyperkern' },
    timestamp: isoTimeCached(),
    formatters: { level: (label) => ({ level: label }) },
  };
}

/** The plugin-facing subset of a pino logger. */
export function asPluginLogger(log: AgentLogger): Logger {
  return log as unknown as Logger;
}
