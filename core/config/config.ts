/**
 * core/config: the agent's configuration (zod schema, defaults, flag and
 * environment overrides); runs the config dialects it is given.
 * May import: contract, jobs (action names), errors.
 *
 * Agent configuration: the file format, its defaults, and the overrides from
 * command-line flags and environment variables. Validation errors name the
 * file, the key and what would be accepted, so an operator can fix the file
 * without reading code.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { Errors } from '../errors.js';
import { ConfigRejection, type ConfigDialect } from '../contract/plugin-api.js';
import { isImageJobAction, isImageQueryAction, isMetricsAction, isSnapshotAction, splitActionName, UNROUTED_MISTIFY_ACTIONS } from '../jobs/actions.js';

const stageRefSchema = z.union([
  z.string().regex(/^[^.\s]+\..+$/, 'a stage name looks like "plugin.stage"'),
  z.object({
    stage: z.string().regex(/^[^.\s]+\..+$/, 'a stage name looks like "plugin.stage"'),
    args: z.record(z.string(), z.unknown()).optional(),
    /** seconds */
    timeout: z.number().positive().max(86400).optional(),
  }),
]);

const actionSchema = z
  .object({
    /** Stages run inside the request, before the job is queued. */
    sync: z.array(stageRefSchema).default([]),
    /** Stages run as one job on the guest's queue. */
    async: z.array(stageRefSchema).default([]),
    /** mistify-agent's name: the async stages (or the one metrics stage). */
    stages: z.array(stageRefSchema).optional(),
  })
  .strict();

const pluginSchema = z
  .object({
    /** A built-in plugin name ("qemu"), a path ("./my-plugin.js"), or a package name. */
    module: z.string().min(1).optional(),
    /**
     * An external sub-agent instead of a module: the program and its
     * arguments, run isolated from the config file's folder; its manifest
     * comes from its handshake (docs/isolation-protocol.md).
     */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** Instance id and stage prefix; defaults to the manifest's id. */
    id: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/).optional(),
    /** Run the plugin in a child process. */
    isolate: z.boolean().default(false),
    /** Calls in flight to an isolated plugin at once. */
    maxPending: z.number().int().positive().max(10000).default(64),
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict()
  .refine((entry) => (entry.module === undefined) !== (entry.command === undefined), {
    message: 'a plugin needs exactly one of "module" (a plugin module) or "command" (an external sub-agent program)',
  })
  // An external program can only run out of process.
  .transform((entry) => (entry.command ? { ...entry, isolate: true } : entry));

export const configSchema = z
  .object({
    listen: z.string().default('127.0.0.1:8080'),
    dataDir: z.string().default('./data'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Largest request body accepted, e.g. "1mb". */
    bodyLimit: z.string().regex(/^\d+(b|kb|mb)$/i, 'a size such as "64kb" or "1mb"').default('1mb'),
    /** Request access logs (one JSON line per request). */
    accessLog: z.boolean().default(true),
    auth: z
      .object({
        /** Bearer tokens accepted; empty = no authentication. */
        tokens: z.array(z.string().min(16, 'tokens must be at least 16 characters')).default([]),
      })
      .strict()
      .default({ tokens: [] }),
    jobs: z
      .object({
        /**
         * Jobs running at once across all guests (one per guest at most). A job is
         * mostly a wait on the hypervisor or the runtime, much of it latency
         * rather than CPU (a container start is ~20 ms of LXC's): 100 containers
         * started at once took 1.5x the bare runtime's time at 16 and about the
         * runtime's own at 128 (bench/RESULTS.md).
         */
        concurrency: z.number().int().positive().max(1024).default(128),
        /** Finished jobs kept; the oldest are pruned first. */
        history: z.number().int().positive().max(10_000_000).default(10000),
        stageTimeoutSeconds: z.number().positive().max(86400).default(60),
        /** On SIGTERM, how long running jobs may take to finish. */
        shutdownGraceSeconds: z.number().nonnegative().max(3600).default(20),
        /** Upper bound of ?wait=SECONDS. */
        maxWaitSeconds: z.number().positive().max(3600).default(300),
      })
      .strict()
      .default({ concurrency: 128, history: 10000, stageTimeoutSeconds: 60, shutdownGraceSeconds: 20, maxWaitSeconds: 300 }),
    events: z
      .object({
        /** Events kept in the state file; a client resuming before the oldest gets a reset. */
        retention: z.number().int().min(100).max(100_000_000).default(100_000),
        /** Seconds between SSE heartbeat comments (keeps proxies from closing idle streams). */
        heartbeatSeconds: z.number().positive().max(3600).default(15),
        /** Bytes an SSE client may leave unread before it is cut off (with a final `overflow` event). */
        clientBufferBytes: z.number().int().min(4096).max(1 << 30).default(1 << 20),
        /** Seconds between plugin health checks; a change is a `plugin.health` event. */
        healthPollSeconds: z.number().positive().max(3600).default(10),
      })
      .strict()
      .default({ retention: 100_000, heartbeatSeconds: 15, clientBufferBytes: 1 << 20, healthPollSeconds: 10 }),
    /** Guests' serial consoles (docs/console.md). */
    console: z
      .object({
        /** Console output bytes a WebSocket viewer may leave unsent before it is cut off (close 4001). */
        viewerBufferBytes: z.number().int().min(4096).max(1 << 30).default(1 << 20),
      })
      .strict()
      .default({ viewerBufferBytes: 1 << 20 }),
    metrics: z
      .object({
        /** A scrape waits at most this long for the guests' metrics stages; late ones are reported as late. */
        scrapeDeadlineSeconds: z.number().positive().max(300).default(5),
        /** Metrics stage calls in flight at once per stage during a scrape. */
        concurrency: z.number().int().positive().max(1024).default(16),
        /** Guest metadata keys exported as labels of hyperkern_guest_info (none by default). */
        guestLabels: z.array(z.string().min(1).max(256)).max(32).default([]),
      })
      .strict()
      .default({ scrapeDeadlineSeconds: 5, concurrency: 16, guestLabels: [] }),
    /** Bounds on what one guest (and the host) may hold, and on error answers. */
    limits: z
      .object({
        /** Metadata keys one guest (or the host) may hold. */
        metadataKeys: z.number().int().positive().max(1_000_000).default(512),
        /** Bytes (UTF-8, keys plus values) of one guest's (or the host's) metadata. */
        metadataBytes: z.number().int().positive().max(1 << 30).default(256 * 1024),
        /** Validation issues listed in a 400 answer; the rest are counted. */
        errorIssues: z.number().int().positive().max(10_000).default(20),
      })
      .strict()
      .default({ metadataKeys: 512, metadataBytes: 256 * 1024, errorIssues: 20 }),
    plugins: z.array(pluginSchema).default([]),
    actions: z.record(z.string(), actionSchema).default({}),
  })
  .strict();

export type AgentConfig = z.infer<typeof configSchema>;
export type PluginConfig = z.infer<typeof pluginSchema>;
export type ActionConfig = z.infer<typeof actionSchema>;
export type StageRefConfig = z.infer<typeof stageRefSchema>;

/** A config as loaded: the parsed content and where it came from. */
export interface LoadedConfig {
  file: string;
  config: AgentConfig;
}

export interface ConfigOverrides {
  listen?: string;
  dataDir?: string;
  tokens?: string[];
  logLevel?: string;
}

/**
 * What the command line's flags and the environment change in the config
 * file: a flag wins over its variable (HYPERKERN_LISTEN, HYPERKERN_DATA_DIR);
 * HYPERKERN_TOKENS adds comma-separated tokens, HYPERKERN_LOG_LEVEL sets the level.
 */
export function overridesFrom(flags: { listen?: string; dataDir?: string }, env: NodeJS.ProcessEnv): ConfigOverrides {
  return {
    listen: flags.listen ?? env.HYPERKERN_LISTEN,
    dataDir: flags.dataDir ?? env.HYPERKERN_DATA_DIR,
    tokens: env.HYPERKERN_TOKENS?.split(',').map((t) => t.trim()).filter(Boolean),
    logLevel: env.HYPERKERN_LOG_LEVEL,
  };
}

/**
 * Reads, translates and validates a config file. `dialects` are asked for
 * (lazily: only a file without a "plugins" list needs them) when the file
 * may be in another plugin's format; main.ts passes the built-in plugins'.
 */
export async function loadConfig(
  file: string,
  overrides: ConfigOverrides = {},
  dialects: () => Promise<ConfigDialect[]> = async () => [],
): Promise<LoadedConfig> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    throw Errors.configUnreadable(`cannot read config file ${absolute}: ${(error as NodeJS.ErrnoException).code ?? error}. Pass an existing file with --config FILE or HYPERKERN_CONFIG.`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw Errors.configUnreadable(`config file ${absolute} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw Errors.configUnreadable(`config file ${absolute} must hold a JSON object`);
  }
  let source = raw as Record<string, unknown>;
  if (!('plugins' in source)) {
    for (const dialect of await dialects()) {
      const translated = translateWith(dialect, source, absolute);
      if (translated) {
        source = translated;
        break;
      }
    }
  }
  const withOverrides = applyOverrides(source, overrides);
  return { file: absolute, config: parseConfig(withOverrides, absolute) };
}

function translateWith(dialect: ConfigDialect, raw: Record<string, unknown>, file: string): Record<string, unknown> | undefined {
  try {
    return dialect(raw, {
      file,
      stageKindOf: (action) =>
        isMetricsAction(splitActionName(action).action)
          ? 'metrics'
          : isImageJobAction(action) || isImageQueryAction(action)
            ? 'image'
            : splitActionName(action).action === 'downloadSnapshot'
              ? 'snapshotDownload'
              : isSnapshotAction(splitActionName(action).action)
                ? 'snapshot'
                : 'action',
      isUnroutedAction: (action) => (UNROUTED_MISTIFY_ACTIONS as readonly string[]).includes(action),
    });
  } catch (error) {
    if (error instanceof ConfigRejection) throw Errors.config(error.message);
    throw error;
  }
}

export function parseConfig(raw: unknown, file: string): AgentConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  - ${issue.path.length ? issue.path.join('.') : '(top level)'}: ${describeIssue(issue)}`);
    throw Errors.config(`config file ${file} is invalid:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; remove them or check their spelling`;
  }
  return issue.message;
}

function applyOverrides(raw: Record<string, unknown>, overrides: ConfigOverrides): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  if (overrides.listen) out.listen = overrides.listen;
  if (overrides.dataDir) out.dataDir = overrides.dataDir;
  if (overrides.logLevel) out.logLevel = overrides.logLevel;
  if (overrides.tokens && overrides.tokens.length > 0) {
    const auth = (typeof out.auth === 'object' && out.auth) || {};
    const existing = Array.isArray((auth as { tokens?: unknown }).tokens) ? ((auth as { tokens: string[] }).tokens) : [];
    out.auth = { ...auth, tokens: [...existing, ...overrides.tokens] };
  }
  return out;
}

/** Splits "host:port" / "[::1]:port"; errors name the flag to fix. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw Errors.listenAddress(`listen address "${listen}" is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080); set it with --listen, HYPERKERN_LISTEN or "listen" in the config`);
  }
  return { host: match[1] ?? match[2], port };
}
