/**
 * The agent under test: dist/core/main.js as its own process, the simulator
 * backend with zero delays, bearer auth and request logging on, logs to a
 * file in the run's temp dir.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../core/runtime-flags.js';
import { freePort, rssOf, spawnNode, waitFor200, type Spawned } from './processes.js';

export const TOKEN = 'bench-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface AgentSpec {
  dataDir: string;
  /** Where config, logs and profiles go. */
  workDir: string;
  label: string;
  /** Run the simulator plugin in a child process. */
  isolateSimulator?: boolean;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** "silent": no log lines at all (the row that shows what logging costs). */
  logLevel?: 'info' | 'silent';
  /** A whole config instead of the simulator's (bench/metrics-backends.ts: QEMU, libvirt). */
  config?: Record<string, unknown>;
  /** Extra environment for the agent. */
  env?: NodeJS.ProcessEnv;
  /** How long the agent may take to answer its first GET /guests (default 60 s). */
  startTimeoutMs?: number;
}

export interface BenchAgent {
  url: string;
  pid: number;
  /** Spawn to first 200 on GET /guests, ms. */
  startupMs: number;
  logFile: string;
  proc: Spawned;
  get(pathname: string): Promise<any>;
  post(pathname: string, body?: unknown): Promise<{ status: number; body: any }>;
  rss(): Promise<{ rss: number; hwm: number; anon: number; file: number } | undefined>;
  stop(): Promise<void>;
}

/** The simulator config, with what the bench needs on top. */
export function benchConfig(spec: AgentSpec): Record<string, unknown> {
  const base = JSON.parse(readFileSync(path.resolve('config/simulator.json'), 'utf8'));
  base.logLevel = spec.logLevel ?? 'info';
  base.accessLog = true;
  base.auth = { tokens: [TOKEN] };
  // jobs.history stays at its default (10,000): the reboot case accounts for
  // its 100,000 jobs by the counts in /health, not by reading them back.
  // Without the images plugin the simulator config gained (issue 21): the cases measure guests and jobs, and
  // their recorded baselines (start-up, RSS) were taken with the simulator and guard alone.
  base.plugins = base.plugins
    .filter((p: { module: string }) => p.module !== 'images')
    .map((p: { module: string }) =>
      p.module === 'simulator' ? { ...p, isolate: Boolean(spec.isolateSimulator), options: { delays: {}, failures: {}, shutdownTimeoutSeconds: 30 } } : p,
    );
  return base;
}

export async function startAgent(spec: AgentSpec): Promise<BenchAgent> {
  const configFile = path.join(spec.workDir, `${spec.label}.config.json`);
  await writeFile(configFile, JSON.stringify(spec.config ?? benchConfig(spec), null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(spec.workDir, `${spec.label}.log`);
  const started = performance.now();
  // Started as `hyperkern serve` and `npm start` start it: with the agent's Node flags and environment.
  const proc = spawnNode(path.resolve('dist/core/main.js'), ['--config', configFile, '--listen', `127.0.0.1:${port}`, '--data-dir', spec.dataDir], logFile, {
    nodeArgs: [...AGENT_NODE_FLAGS, ...(spec.nodeArgs ?? [])],
    cwd: spec.workDir,
    env: { ...process.env, ...AGENT_ENV, ...spec.env },
  });
  let startupMs: number;
  try {
    startupMs = await waitFor200(`${url}/guests`, AUTH, spec.startTimeoutMs ?? 60_000, started, proc.exited);
  } catch (error) {
    await proc.stop();
    throw new Error(`agent ${spec.label} did not start: ${(error as Error).message}; see ${logFile}`);
  }
  return {
    url,
    pid: proc.pid,
    startupMs,
    logFile,
    proc,
    async get(pathname) {
      const res = await fetch(url + pathname, { headers: AUTH, signal: AbortSignal.timeout(60_000) });
      if (res.status !== 200) throw new Error(`GET ${pathname}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async post(pathname, body) {
      const res = await fetch(url + pathname, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    rss: () => rssOf(proc.pid),
    stop: () => proc.stop(30_000),
  };
}

/** Waits (bounded) until the agent has no queued or running job. */
export async function waitIdle(agent: BenchAgent, timeoutMs: number): Promise<number> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  while (performance.now() < deadline) {
    const health = await agent.get('/health');
    if (health.jobs.queued === 0 && health.jobs.running === 0) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agent still had jobs after ${timeoutMs} ms`);
}
