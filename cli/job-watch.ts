/**
 * `--wait`: follows a queued job until it ends, with a live line on a
 * terminal (spinner, the job's status and the guest's state, elapsed time),
 * and ends with one line that says the outcome. The exit code says it too.
 */
import ora from 'ora';
import type { Guest, Job } from '../core/contract/wire-types.js';
import type { AgentClient } from './agent-client.js';
import { ApiError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { onInterrupt } from './interrupt.js';

export interface WatchOptions {
  /** Give up after this many seconds (the job goes on). */
  timeoutSeconds: number;
  json: boolean;
  /** How often to ask the agent. */
  pollMs?: number;
  /** Said on stderr when a stop signal ends the watch (the job goes on): how to act on it. */
  interruptNote?: (jobId: string) => string;
}

export interface WatchResult {
  exitCode: number;
  job: Job;
  guest?: Guest;
}

const short = (id: string) => id.slice(0, 8);
/** Whose job: the guest's short id, or "host" for image jobs (GuestID ""). */
const subject = (job: Job) => (job.GuestID ? short(job.GuestID) : 'host');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export async function watchJob(client: AgentClient, jobId: string, options: WatchOptions): Promise<WatchResult> {
  const started = Date.now();
  const deadline = started + options.timeoutSeconds * 1000;
  // The CLI decides itself whether the display is live (a terminal that can
  // show it, no --json): ora would otherwise switch itself off wherever a CI
  // variable is set. A terminal of 0 columns (a serial console, `script`)
  // cannot show it: ora's line count is then infinite, and it looped writing
  // cursor-ups at 100% CPU.
  let spinner = !options.json && canShowLiveLine() ? ora({ stream: process.stderr, isEnabled: true, text: `job ${short(jobId)}: asking the agent` }).start() : undefined;
  const stopSpinner = () => {
    spinner?.stop();
    spinner = undefined;
  };
  /** The last line: the spinner's symbol and text on a live display, else plain text on stdout. */
  const finish = (outcome: 'succeed' | 'fail' | 'warn', line: string) => {
    if (spinner) spinner[outcome](line);
    else if (!options.json) process.stdout.write(`${outcome === 'warn' ? '' : outcome === 'succeed' ? '✔ ' : '✖ '}${line}\n`);
    spinner = undefined;
  };
  // Shrunk to 0 columns while it runs: the rest is plain text.
  const onResize = () => (canShowLiveLine() ? undefined : stopSpinner());
  process.stderr.on('resize', onResize);
  const forgetInterrupt = onInterrupt(() => {
    stopSpinner();
    if (options.interruptNote) process.stderr.write(`${options.interruptNote(jobId)}\n`);
  });
  try {
    let job: WatchedJob = await client.job(jobId);
    let guest: Guest | undefined;
    for (;;) {
      guest = await guestIfThere(client, job.GuestID);
      if (job.Status === 'Complete' || job.Status === 'Error') break;
      if (spinner) spinner.text = liveLine(job, guest, Date.now() - started);
      if (Date.now() >= deadline) {
        finish('warn', `… ${job.Action} ${subject(job)} still ${job.Status} after ${options.timeoutSeconds}s; job ${job.ID} goes on (hyperkern jobs get ${job.ID})`);
        return { exitCode: EXIT.timedOut, job, guest };
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 200));
      job = await client.job(jobId);
    }
    const took = seconds(Date.now() - started);
    if (job.Status === 'Complete') {
      finish('succeed', `${job.Action} ${subject(job)} complete in ${took}${guest ? ` (guest ${guest.state})` : job.Action === 'delete' ? ' (guest deleted)' : job.Message ? ` (${job.Message})` : ''}`);
      return { exitCode: EXIT.ok, job, guest };
    }
    finish('fail', `${job.Action} ${subject(job)} failed after ${took}: ${job.Message}`);
    return { exitCode: EXIT.failed, job, guest };
  } finally {
    process.stderr.off('resize', onResize);
    forgetInterrupt();
    stopSpinner();
  }
}

/** A live line needs a terminal that reports its width: 0 columns is a terminal that cannot place one. */
function canShowLiveLine(): boolean {
  return process.stderr.isTTY === true && (process.stderr.columns ?? 0) > 0;
}

/** What GET /jobs/{id} shows of a running move (docs/migration.md). */
export interface MoveProgress {
  phase: string;
  target: string;
  bytesSent: number;
  bytesLeft: number;
  bytesTotal: number;
}

/** A job as GET /jobs/{id} answers it while it runs: the wire Job and its extension fields. */
export type WatchedJob = Job & { Stage?: string; QueuePosition?: number; Migration?: MoveProgress };

/**
 * The live line: action, job status with its current stage (or its place in
 * the guest's queue), a byte progress bar while an image transfers or a
 * guest moves (with its phase and the bytes left), the guest's state and
 * the time so far.
 */
export function liveLine(job: WatchedJob, guest: Guest | undefined, elapsedMs: number): string {
  const parts = [`${job.Action} ${subject(job)}: ${job.Status}`];
  if (job.Migration) parts.push(`phase ${job.Migration.phase}`);
  else if (job.Stage) parts.push(`stage ${job.Stage}`);
  if (job.QueuePosition) parts.push(`queue position ${job.QueuePosition}`);
  const move = job.Migration;
  if (move && move.bytesTotal > 0) parts.push(`${progressBar(move.bytesSent, move.bytesTotal)}, ${mib(move.bytesLeft)} left`);
  else if (move && move.bytesSent > 0) parts.push(`${mib(move.bytesSent)} sent`);
  const transfer = /transferring: (\d+)(?: of (\d+))? bytes/.exec(job.Message);
  if (transfer) parts.push(progressBar(Number(transfer[1]), transfer[2] === undefined ? undefined : Number(transfer[2])));
  if (guest) parts.push(`guest ${guest.state}`);
  parts.push(seconds(elapsedMs));
  return parts.join(' · ');
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

function progressBar(done: number, total: number | undefined): string {
  if (!total) return `${mib(done)} so far`;
  const width = 24;
  const filled = Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${mib(done)} of ${mib(total)} (${Math.min(100, Math.floor((done / total) * 100))}%)`;
}

async function guestIfThere(client: AgentClient, id: string): Promise<Guest | undefined> {
  // Host jobs (image fetch and delete) belong to no guest.
  if (!id) return undefined;
  try {
    return await client.guest(id);
  } catch (error) {
    // A deleted guest is gone: that is the point of a delete job.
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}
