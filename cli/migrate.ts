/**
 * `hyperkern migrate ID --host H` (or `--target-url U [--target-token T]`):
 * moves a guest to another agent (POST /guests/{id}/migrate,
 * docs/migration.md). With --wait the live line shows the move's phase and
 * the bytes sent and left; Ctrl-C (or SIGTERM) only stops watching: the
 * move goes on, and the line printed says how to cancel it. The target is
 * not `--url`/`--token`: those already name the agent this command talks
 * to (the source) and its token.
 */
import type { Command } from 'commander';
import type { Guest } from '../core/contract/wire-types.js';
import { CliError } from './cli-error.js';
import { client, enc, json, keyValues, number, out, query, waitOptions, type WaitFlags } from './command-kit.js';
import { EXIT } from './exit-codes.js';
import { watchJob } from './job-watch.js';
import { resolveGuestId } from './short-ids.js';

/** The CLI's action wrapper (hyperkern.ts `run`). */
type Run = (fn: (...args: never[]) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

interface MigrateFlags extends WaitFlags {
  host?: string;
  targetUrl?: string;
  targetToken?: string;
  bandwidth?: string;
}

/** The request body: a fleet host id, or the target agent's URL and token. */
export function migrateBody(o: MigrateFlags, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  if (o.host !== undefined && o.targetUrl !== undefined) throw new CliError('give --host (a fleet host id) or --target-url (an agent), not both', EXIT.usage);
  if (o.host === undefined && o.targetUrl === undefined) throw new CliError('where to? give --host H (a host of the fleet) or --target-url http://HOST:PORT (any agent)', EXIT.usage);
  const body: Record<string, unknown> = {};
  if (o.host !== undefined) {
    if (o.targetToken !== undefined) throw new CliError("--target-token goes with --target-url; with --host the token comes from the fleet plugin's options", EXIT.usage);
    body.host = o.host;
  } else {
    body.url = o.targetUrl;
    const token = o.targetToken ?? env.HYPERKERN_TARGET_TOKEN;
    if (token) body.token = token;
  }
  if (o.bandwidth !== undefined) body.bandwidth = number(o.bandwidth, '--bandwidth');
  return body;
}

export function addMigrateCommand(program: Command, run: Run): void {
  waitOptions(
    program
      .command('migrate <id>')
      .description('move a guest to another agent: live when it runs, cold when it is off (docs/migration.md)')
      .option('--host <hostId>', "a host of the fleet (looked up in etcd by the agent's fleet plugin)")
      .option('--target-url <url>', "any agent's base URL, http://HOST:PORT")
      .option('--target-token <token>', "with --target-url: the target agent's bearer token (env HYPERKERN_TARGET_TOKEN)")
      .option('--bandwidth <MiB/s>', 'cap the copy at this many MiB/s'),
  ).action(
    run(async (id: string, o: MigrateFlags, cmd: Command) => {
      const { api, flags } = client(cmd);
      const body = migrateBody(o);
      const guestId = await resolveGuestId(api, id);
      const answer = await api.request<Guest>('POST', `/guests/${enc(guestId)}/migrate${query(keyValues(o.arg, '--arg'))}`, body);
      const jobId = answer.headers.get('x-guest-job-id');
      if (!o.wait || !jobId) {
        if (flags.json) json({ guest: answer.body, job: jobId });
        else out(`migrate ${answer.body.id}: job ${jobId ?? '(none)'} queued\n`);
        return EXIT.ok;
      }
      const result = await watchJob(api, jobId, {
        timeoutSeconds: number(o.timeout, '--timeout'),
        json: flags.json === true,
        interruptNote: (job) => `hyperkern: stopped watching; the move goes on (hyperkern jobs get ${job} follows it, hyperkern jobs cancel ${job} cancels it)`,
      });
      if (flags.json) json({ outcome: result.exitCode === EXIT.ok ? 'complete' : result.exitCode === EXIT.timedOut ? 'timed out' : 'failed', job: result.job, guest: result.guest ?? null });
      return result.exitCode;
    }),
  );
}
