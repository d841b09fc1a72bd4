/**
 * The agent's kernel in the test's own process: the config loaded as
 * `hyperkern serve` loads it, a real SQLite file in a temp data dir, a real
 * HTTP server on 127.0.0.1 (port 0), and the same TestAgent the spawned
 * helper gives (request(), url, logs, stop()). What it leaves out is the
 * process: no CLI flags, no signals, no exit code, no stdout. Tests where
 * those are the point (kill -9, SIGTERM, isolation, two processes on one
 * data dir, a stalled log reader) start a child with startAgent() instead.
 *
 * The log goes to memory (`logs`, one JSON line per entry, as a child
 * writes them) and never to the mocha output.
 */
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { loadConfig, overridesFrom } from '../../core/config/config.js';
import { Kernel } from '../../core/kernel.js';
import { logLineFormat } from '../../core/logger.js';
import { builtinConfigDialects } from '../../core/plugins/plugin-loader.js';
import { configFileFor, makeTempDir, removeDir, requestTo, type TestAgent } from './agent.js';

export interface InProcessAgentOptions {
  /** A config object (written to a temp file, as for a child) or the path of a config file. */
  config: object | string;
  /** Reuse a data dir (e.g. to restart an agent on the same state). */
  dataDir?: string;
  /**
   * The agent's environment variables (HYPERKERN_TOKENS, HYPERKERN_LOG_LEVEL),
   * read as the command line reads them; the log level is debug unless set,
   * as for a child. The plugins see the test's own process.env.
   */
  env?: Record<string, string>;
}

/** The variables the kernel reads (the others, HYPERKERN_LISTEN and so on, are the helper's to set). */
const KERNEL_VARIABLES = new Set(['HYPERKERN_TOKENS', 'HYPERKERN_LOG_LEVEL']);

/** An in-process agent, with its kernel for tests of kernel APIs no route reaches (a completed move's record). */
export interface InProcessAgent extends TestAgent {
  kernel: Kernel;
}

export async function startInProcessAgent(options: InProcessAgentOptions): Promise<InProcessAgent> {
  const foreign = Object.keys(options.env ?? {}).filter((name) => !KERNEL_VARIABLES.has(name));
  if (foreign.length > 0) throw new Error(`an in-process agent reads only ${[...KERNEL_VARIABLES].join(', ')}; for ${foreign.join(', ')} start a child with startAgent()`);
  const dataDir = options.dataDir ?? (await makeTempDir());
  const { file, written } = await configFileFor(options.config, dataDir);
  const logs: string[] = [];
  // pino writes each entry as one JSON line; a test reads them as the child's stdout lines.
  let served: { kernel: Kernel; url: string };
  try {
    // As the spawned helper runs it: --listen 127.0.0.1:0 --data-dir DIR, HYPERKERN_LOG_LEVEL=debug.
    const overrides = overridesFrom({ listen: '127.0.0.1:0', dataDir }, { HYPERKERN_LOG_LEVEL: 'debug', ...options.env });
    const loaded = await loadConfig(file, overrides, builtinConfigDialects);
    const log = pino(logLineFormat(loaded.config.logLevel), { write: (line: string) => void logs.push(line.replace(/\n$/, '')) });
    served = await Kernel.serve(loaded, log);
  } catch (error) {
    // As for a child that never listened: the data dir made for it goes, and the error says what the log said.
    if (!options.dataDir) await removeDir(dataDir);
    (error as Error).message += `\nlogs:\n${logs.join('\n')}`;
    throw error;
  } finally {
    if (written) await rm(written, { force: true });
  }
  const { kernel, url } = served;
  let stopped: Promise<number> | undefined;
  return {
    url,
    dataDir,
    logs,
    kernel,
    // Graceful, as SIGTERM is for a child: server closed, jobs given their grace, plugins stopped, state flushed, lock released.
    stop: () => (stopped ??= kernel.stop().then(() => 0)),
    request: requestTo(url),
  };
}
