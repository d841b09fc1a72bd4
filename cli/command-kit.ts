/**
 * What every client command of the CLI uses: the global and --wait flags,
 * output (a table or --json), the API client from the flags, KEY=VALUE and
 * number arguments, and reporting or following a queued job.
 */
import type { Command } from 'commander';
import { AgentClient } from './agent-client.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { watchJob } from './job-watch.js';
import { resolveSettings } from './settings.js';

export interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

export interface WaitFlags extends GlobalFlags {
  wait?: boolean;
  /** Print only the guest's id (guests create): for ID=$(…) in scripts. */
  quiet?: boolean;
  timeout: string;
  arg?: string[];
}

export const enc = encodeURIComponent;
export const out = (text: string): void => void process.stdout.write(text);
export const json = (value: unknown): void => out(`${JSON.stringify(value, null, 2)}\n`);
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function client(cmd: Command): { api: AgentClient; flags: GlobalFlags } {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  return { api: new AgentClient(resolveSettings(flags)), flags };
}

export function keyValues(pairs: string[] | undefined, what: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`${what} "${pair}" must be KEY=VALUE`, EXIT.usage);
    result[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return result;
}

export function number(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`${what} must be a number; got "${value}"`, EXIT.usage);
  return n;
}

export function waitOptions(cmd: Command): Command {
  return cmd
    .option('-w, --wait', 'follow the job until it ends; the exit code says how it ended')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit 3; the job goes on)', '300')
    .option('--arg <key=value>', "pass an argument to the action's stages (repeatable), e.g. --arg timeout=60 for shutdown", collect);
}

/** An action was queued: report it, or follow it with --wait. */
export async function queued(api: AgentClient, flags: WaitFlags, answer: { body: { id: string }; headers: Headers }, verb: string): Promise<number> {
  const jobId = answer.headers.get('x-guest-job-id');
  if (flags.quiet) {
    const result = flags.wait && jobId ? await watchJob(api, jobId, { timeoutSeconds: number(flags.timeout, '--timeout'), json: true }) : undefined;
    out(`${answer.body.id}\n`);
    if (result && result.exitCode !== EXIT.ok) process.stderr.write(`hyperkern: ${verb} ${result.job.Status === 'Error' ? `failed: ${result.job.Message}` : `still ${result.job.Status}; job ${jobId} goes on`}\n`);
    return result?.exitCode ?? EXIT.ok;
  }
  if (!flags.wait || !jobId) {
    if (flags.json) json({ guest: answer.body, job: jobId });
    else out(`${verb} ${answer.body.id}: job ${jobId ?? '(none)'} queued\n`);
    return EXIT.ok;
  }
  const result = await watchJob(api, jobId, { timeoutSeconds: number(flags.timeout, '--timeout'), json: flags.json === true });
  if (flags.json) json({ outcome: result.exitCode === EXIT.ok ? 'complete' : result.exitCode === EXIT.timedOut ? 'timed out' : 'failed', job: result.job, guest: result.guest ?? null });
  return result.exitCode;
}

export function query(args: Record<string, string>): string {
  const q = new URLSearchParams(args).toString();
  return q ? `?${q}` : '';
}
