/**
 * Ids as the CLI prints them: `✔ create 5c03da40 complete` shows the first
 * 8 characters, so every command that takes a guest or job id also takes a
 * unique prefix of one, as git takes a commit's (guest and job ids are
 * UUIDs: a whole one is sent as given). A prefix that fits none or several
 * is one clear line, before anything is sent that could change something.
 */
import type { Guest, Job } from '../core/contract/wire-types.js';
import type { AgentClient } from './agent-client.js';
import { CliError } from './cli-error.js';

/** A whole id is sent as given: the agent's own 404 says it if it is unknown. */
const FULL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Prefixes shown in an "ambiguous" error. */
const SHOWN = 5;
/** Every job the agent keeps (jobs.history is at most this). */
const ALL_JOBS = 100000;

export async function resolveGuestId(api: AgentClient, given: string): Promise<string> {
  return resolve(given, 'guest', 'hyperkern guests ls', async () => (await api.get<Guest[]>('/guests')).map((g) => g.id));
}

export async function resolveJobId(api: AgentClient, given: string): Promise<string> {
  return resolve(given, 'job', 'hyperkern jobs ls', async () => (await api.get<Job[]>(`/jobs?limit=${ALL_JOBS}`)).map((j) => j.ID));
}

/** Comma-separated guest ids (events --guest), each resolved. */
export async function resolveGuestIds(api: AgentClient, given: string): Promise<string> {
  const ids = await Promise.all(given.split(',').map((id) => (id === '' ? id : resolveGuestId(api, id))));
  return ids.join(',');
}

async function resolve(given: string, kind: string, lister: string, all: () => Promise<string[]>): Promise<string> {
  if (FULL_UUID.test(given) || given === '') return given;
  const prefix = given.toLowerCase();
  const matches = (await all()).filter((id) => id.toLowerCase().startsWith(prefix));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new CliError(`no ${kind} with id or id prefix "${given}" on this host (${lister} lists them)`);
  const shown = matches.slice(0, SHOWN).map((id) => id.slice(0, Math.max(12, given.length + 4)));
  throw new CliError(
    `${kind} id prefix "${given}" is ambiguous: ${matches.length} ${kind}s start with it (${shown.join(', ')}${matches.length > SHOWN ? ', …' : ''}); give more characters`,
  );
}
