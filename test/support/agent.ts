/**
 * Starts the real agent (dist/core/main.js) as a child process on loopback
 * with a temporary data dir, the way an operator would, and tears it down.
 * Integration tests use this instead of in-process app objects so that they
 * exercise the CLI, config loading, SQLite and HTTP for real.
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

export interface RunningAgent {
  url: string;
  pid: number;
  dataDir: string;
  process: ChildProcess;
  /** Every line the agent logged so far (stdout and stderr). */
  logs: string[];
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, as a crash would, and wait for exit. */
  kill9(): Promise<void>;
  /** fetch() relative to the agent's URL, with JSON helpers. */
  request(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
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

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const dataDir = options.dataDir ?? (await makeTempDir());
  let configPath: string;
  // A config object is written to a temp file the agent reads once at boot;
  // the file is removed as soon as the agent listens (or fails to).
  let writtenConfig: string | undefined;
  if (typeof options.config === 'string') {
    configPath = options.config;
  } else {
    configPath = writtenConfig = path.join(dataDir, '..', `${path.basename(dataDir)}.config.json`);
    await writeFile(configPath, JSON.stringify(options.config, null, 2));
  }
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
    async request(method, urlPath, body, headers = {}) {
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
      // Every answer a test sees must match the OpenAPI document.
      await checkResponse({ method, url: url + urlPath, status: res.status, headers: res.headers, body: parsed });
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
  };
  return agent;
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
