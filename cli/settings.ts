/**
 * Where the agent is and who we are: flags, then HYPERKERN_URL /
 * HYPERKERN_TOKEN, then the config file (HYPERKERN_CLI_CONFIG, else
 * ~/.config/hyperkern/cli.json, else /etc/hyperkern/cli.json), then
 * http://127.0.0.1:8080 without a token.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CliError } from './cli-error.js';

export interface Settings {
  url: string;
  token?: string;
}

const fileSchema = z.object({ url: z.string().url().optional(), token: z.string().min(1).optional() }).strict();

export function configFileCandidates(env: NodeJS.ProcessEnv): string[] {
  if (env.HYPERKERN_CLI_CONFIG) return [env.HYPERKERN_CLI_CONFIG];
  const home = env.XDG_CONFIG_HOME ?? path.join(homedir(), '.config');
  return [path.join(home, 'hyperkern', 'cli.json'), '/etc/hyperkern/cli.json'];
}

function readConfigFile(env: NodeJS.ProcessEnv): z.infer<typeof fileSchema> {
  const candidates = configFileCandidates(env);
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      // A missing default file is normal; a named one must exist.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !env.HYPERKERN_CLI_CONFIG) continue;
      throw new CliError(`cannot read CLI config ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new CliError(`CLI config ${file} is not JSON: ${(error as Error).message}`);
    }
    const checked = fileSchema.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new CliError(`CLI config ${file}: ${issue.path.join('.') || 'top level'}: ${issue.message} (it holds {"url": "...", "token": "..."})`);
    }
    return checked.data;
  }
  return {};
}

export function resolveSettings(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): Settings {
  const file = flags.url && flags.token ? {} : readConfigFile(env);
  const url = flags.url ?? env.HYPERKERN_URL ?? file.url ?? 'http://127.0.0.1:8080';
  const token = flags.token ?? env.HYPERKERN_TOKEN ?? file.token;
  return { url: url.replace(/\/+$/, ''), token: token || undefined };
}
