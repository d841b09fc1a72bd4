/**
 * Starts the real agent (dist/core/main.js) as a child process on loopback
 * with a temporary data dir, the way an operator would, and tears it down.
 * Tests where the process is the point use this: kill -9, SIGTERM and exit
 * codes, the CLI's flags and environment, the data-dir lock between two
 * processes, isolation, a stalled stdout. Route and kernel tests use the
 * same kernel in-process instead (in-process-agent.ts), which answers on a
 * real loopback HTTP server from a real SQLite file just the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResponse } from './contract.js';

/** Root of the compiled tree (dist/), where core/main.js lives. */
export const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Root of the repository (the folder with package.json and config/). */
export const repoRoot = path.resolve(distRoot, '..');

export interface AgentOptions {
  /** A config object (written to a temp file) or the path of a config file. */
  config: object | string;
  /** Reuse a data dir (e.g. to restart an agent on the same state). */
  dataDir?: string;
  env?: Record<string, string>;
  /** Extra CLI arguments. */
  args?: string[];
  /** Milliseconds to wait for the "listening" log line. */
  startTimeoutMs?: number;
}

/** What a test sees of an agent, whether it runs in a child process or in the test's own. */
export interface TestAgent {
  url: string;
  dataDir: string;
  /** Every line the agent logged so far (for a child: stdout and stderr). */
  logs: string[];
  /** Stop gracefully (a child gets SIGTERM) and wait; returns the exit code (0 for a clean in-process stop). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** fetch() relative to the agent's URL, with JSON helpers; every answer is checked against the OpenAPI document. */
  request(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
}

/** An agent in its own process. */
export interface RunningAgent extends TestAgent {
  pid: number;
  process: ChildProcess;
  /** SIGKILL, as a crash would, and wait for exit. */
  kill9(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** Creates a temp dir that the caller removes with removeDir(). */
export async function makeTempDir(prefix = 'hyperkern-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * The config file an agent is started with: the path given, or a config
 * object written to a temp file beside the data dir (`written`), which the
 * caller removes once the agent has read it.
 */
export async function configFileFor(config: object | string, dataDir: string): Promise<{ file: string; written?: string }> {
  if (typeof config === 'string') return { file: config };
  const file = path.join(dataDir, '..', `${path.basename(dataDir)}.config.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return { file, written: file };
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const dataDir = options.dataDir ?? (await makeTempDir());
  // The agent reads its config once at boot; a written one is removed as soon as it listens (or fails to).
  const { file: configPath, written: writtenConfig } = await configFileFor(options.config, dataDir);
  const child = spawn(
    process.execPath,
    [path.join(distRoot, 'core/main.js'), '--config', configPath, '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...(options.args ?? [])],
    { cwd: repoRoot, env: { ...process.env, HYPERKERN_LOG_LEVEL: 'debug', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`agent did not report "listening" within ${options.startTimeoutMs ?? 20000} ms; logs:\n${logs.join('\n')}`)),
      options.startTimeoutMs ?? 20000,
    );
    const onLine = (line: string) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'listening' && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        /* not JSON: keep it in logs */
      }
    };
    lineReader(child.stdout!, onLine);
    lineReader(child.stderr!, onLine);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with code ${code} before listening; logs:\n${logs.join('\n')}`));
    });
  })
    .catch(async (error) => {
      // An agent that never listened hands no data dir back: remove the one made for it.
      child.kill('SIGKILL');
      if (!options.dataDir) await removeDir(dataDir);
      throw error;
    })
    .finally(() => (writtenConfig ? rm(writtenConfig, { force: true }) : undefined));
  const agent: RunningAgent = {
    url,
    pid: child.pid!,
    dataDir,
    process: child,
    logs,
    async stop(timeoutMs = 30000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    request: requestTo(url),
  };
  return agent;
}

/** fetch() against `url` with JSON helpers; every answer must match the OpenAPI document. */
export function requestTo(url: string): TestAgent['request'] {
  return async (method, urlPath, body, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + urlPath, init);
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    await checkResponse({ method, url: url + urlPath, status: res.status, headers: res.headers, body: parsed });
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}

function lineReader(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

/** Polls fn until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
