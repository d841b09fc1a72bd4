#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node
/**
 * Command line: `hyperkern [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--check]`.
 * Every flag has an environment variable (HYPERKERN_CONFIG, HYPERKERN_LISTEN,
 * HYPERKERN_DATA_DIR); HYPERKERN_TOKENS adds bearer tokens (comma-separated)
 * and HYPERKERN_LOG_LEVEL sets the log level. Flags win over the
 * environment, which wins over the config file.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { container } from 'tsyringe';
import { loadConfig, overridesFrom } from './config/config.js';
import { HyperkernError, messageOf } from './errors.js';
import { Kernel, VERSION, preparePlugins } from './kernel.js';
import { releaseStartupGarbage } from './startup-gc.js';
import { planReport } from './jobs/plan-report.js';
import { builtinConfigDialects } from './plugins/plugin-loader.js';
import { createLogger } from './logger.js';
import { Tokens, type AgentInfo, type GuestDirectory } from './contract/plugin-api.js';

/** What plugins see during --check: no guests, nothing recorded. */
const emptyGuestDirectory: GuestDirectory = {
  list: async () => [],
  get: async () => undefined,
  observe: async () => undefined,
};

/** What plugins see of the agent during --check: it never listens, no guest changes. */
const checkAgentInfo: AgentInfo = {
  version: VERSION,
  startedAt: Date.now(),
  url: () => undefined,
  status: async () => 'ok',
  onGuestChange: () => () => undefined,
};

const USAGE = `hyperkern ${VERSION}: REST agent for the guests of this hypervisor host

usage: hyperkern serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--check]
       npm start -- [same flags]   (in a checkout; default config config/agent.json)

  --config FILE      config file (env HYPERKERN_CONFIG; default config/agent.json)
  --listen HOST:PORT address to serve on (env HYPERKERN_LISTEN; default 127.0.0.1:8080)
  --data-dir DIR     where state lives (env HYPERKERN_DATA_DIR; default ./data)
  --check            validate the config and its plugins, print the action plans, then exit
  --help             this text
environment: HYPERKERN_TOKENS=tok1,tok2 adds bearer tokens; HYPERKERN_LOG_LEVEL=debug`;

/** After a stop signal: how long past the kernel's own stop deadline the process may live. */
const STOP_MARGIN_MS = 3000;
/** How long the last log lines may take to reach stdout at exit. */
const LOG_DRAIN_MS = 1000;

async function main(): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        'data-dir': { type: 'string' },
        check: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const env = process.env;
  const configFile = flags.config ?? env.HYPERKERN_CONFIG ?? 'config/agent.json';
  const loaded = await loadConfig(configFile, overridesFrom({ listen: flags.listen, dataDir: flags['data-dir'] }, env), builtinConfigDialects);
  const output = createLogger(loaded.config.logLevel);
  const { log } = output;

  if (flags.check) {
    // Plugins are constructed (options, stages, action plans checked) but not
    // started, against a throwaway data dir so a check changes nothing.
    const scratch = await mkdtemp(path.join(tmpdir(), 'hyperkern-check-'));
    try {
      const checkContainer = container.createChildContainer();
      checkContainer.register(Tokens.Guests, { useValue: emptyGuestDirectory });
      checkContainer.register(Tokens.Agent, { useValue: checkAgentInfo });
      const { plugins, plans } = await preparePlugins(loaded, log, checkContainer, scratch);
      await Promise.allSettled(plugins.map((p) => p.instance.stop?.()));
      process.stdout.write(
        `config ${loaded.file} is valid: plugins ${plugins.map((p) => p.id).join(', ') || '(none)'}; ` +
          `actions ${[...plans.lifecycle.keys(), ...plans.metrics.keys(), ...plans.image.keys(), ...plans.snapshot.keys()].join(', ') || '(none)'}` +
          Object.values(plans.byType)
            .map((set) => [...set.lifecycle.values(), ...set.metrics.values(), ...set.snapshot.values()].map((p) => p.configName))
            .filter((names) => names.length > 0)
            .map((names) => `; guest-type actions ${names.join(', ')}`)
            .join('') +
          '\n' +
          planReport(plans, loaded.config.jobs.stageTimeoutSeconds * 1000),
      );
      return 0;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  const { kernel } = await Kernel.serve(loaded, log, output);
  // Not awaited: the stop signals below are handled while it runs.
  void releaseStartupGarbage();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      // Whatever hangs (a plugin's stop, a client holding a connection), the
      // agent is gone within the grace period plus this margin.
      const deadlineMs = kernel.stopDeadlineMs + STOP_MARGIN_MS;
      setTimeout(() => {
        log.error({ signal, deadlineMs }, 'stop did not finish in time: exiting now');
        process.exit(1);
      }, deadlineMs).unref();
      log.info({ signal }, 'stopping: no new requests; running jobs may finish');
      kernel.stop().then(resolve, (error) => {
        log.error({ err: error }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  // Bounded: a stalled stdout reader loses the last lines, never the exit.
  await output.close(LOG_DRAIN_MS);
  return 0;
}

process.on('unhandledRejection', (reason) => {
  // A stage that rejects after its timeout already failed its job; keep serving.
  process.stderr.write(`${JSON.stringify({ level: 'warn', name: 'hyperkern', msg: 'unhandled rejection', error: String((reason as Error)?.message ?? reason) })}\n`);
});

main().then(
  (code) => {
    process.exitCode = code;
    // Leftover handles (a plugin's socket) must not keep a stopped agent alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (error) => {
    // Boot errors: one clear line for the operator, never a stack (a bug's
    // stack is one HYPERKERN_LOG_LEVEL=debug away).
    const debug = process.env.HYPERKERN_LOG_LEVEL === 'debug';
    const message =
      error instanceof HyperkernError ? error.message : `unexpected error: ${debug ? ((error as Error)?.stack ?? error) : `${messageOf(error)} (HYPERKERN_LOG_LEVEL=debug shows where)`}`;
    process.stderr.write(`hyperkern: ${message}\n`);
    process.exitCode = 1;
  },
);
