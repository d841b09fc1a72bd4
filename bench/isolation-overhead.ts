/**
 * Per-call overhead of an isolated plugin: p50/p99 latency of
 * GET /guests/{id}/metrics/cpu with the simulator in-process versus the same
 * module with "isolate": true (one MessagePack-RPC round trip to a child
 * process per call). Sequential requests, one keep-alive connection per
 * agent, over loopback, after a warm-up, alternating between the two agents,
 * so the difference between them is the isolation hop and nothing else.
 *
 *   npx tsc -p . && node dist/bench/isolation-overhead.js [--requests 2000] [--warmup 300]
 *
 * Bounded: a fixed number of requests per mode, each with a 10 s deadline.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { removeDir, startAgent, type RunningAgent } from '../test/support/agent.js';
import { simulatorConfig } from '../test/support/configs.js';

interface Result {
  mode: string;
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

type Mode = 'in-process' | 'isolated';

interface Target {
  mode: Mode;
  agent: RunningAgent;
  dispatcher: Agent;
  url: string;
  times: number[];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** An agent with a running guest, the simulator in-process or isolated. */
async function prepare(mode: Mode): Promise<Target> {
  const config = simulatorConfig({ accessLog: false, logLevel: 'info' });
  for (const plugin of config.plugins) if (plugin.module === 'simulator') plugin.isolate = mode === 'isolated';
  // Info level: the launcher waits for the "listening" line; with access logs off no request is logged.
  const agent = await startAgent({ config, env: { HYPERKERN_LOG_LEVEL: 'info' } });
  // The create boots the guest (the shipped create pipeline ends with start).
  const created = await agent.request('POST', '/guests?wait=10', { memory: 512, cpu: 2 });
  if (created.status !== 200 || created.body.state !== 'running') throw new Error(`${mode}: create failed: ${created.status} ${created.text}`);
  return {
    mode,
    agent,
    dispatcher: new Agent({ connections: 1, keepAliveTimeout: 60_000 }),
    url: `${agent.url}/guests/${created.body.id}/metrics/cpu`,
    times: [],
  };
}

async function once(target: Target): Promise<number> {
  const t0 = performance.now();
  const res = await request(target.url, { dispatcher: target.dispatcher, signal: AbortSignal.timeout(10_000) });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${target.mode}: metrics answered ${res.statusCode}`);
  return performance.now() - t0;
}

function summarize(target: Target): Result {
  const times = [...target.times].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    mode: target.mode,
    requests: times.length,
    p50: round(percentile(times, 50)),
    p90: round(percentile(times, 90)),
    p99: round(percentile(times, 99)),
    mean: round(times.reduce((a, b) => a + b, 0) / times.length),
    max: round(times[times.length - 1]),
  };
}

/**
 * Both agents run at once and requests alternate between them (the order
 * flipping each round), so background load on the machine hits both modes
 * alike instead of whichever happened to run second.
 */
async function measure(requests: number, warmup: number): Promise<Result[]> {
  const targets: Target[] = [];
  try {
    targets.push(await prepare('in-process'), await prepare('isolated'));
    for (let i = 0; i < warmup; i++) for (const target of targets) await once(target);
    for (let i = 0; i < requests; i++) {
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) target.times.push(await once(target));
    }
    return targets.map(summarize);
  } finally {
    for (const target of targets) {
      await target.dispatcher.close();
      await target.agent.stop();
      await removeDir(target.agent.dataDir);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, warmup: { type: 'string', default: '300' } } });
  const requests = Math.min(100_000, Math.max(1, Number(values.requests)));
  const warmup = Math.min(100_000, Math.max(0, Number(values.warmup)));
  const results = await measure(requests, warmup);
  console.log('GET /guests/{id}/metrics/cpu, sequential, one keep-alive connection, latency in ms');
  console.table(results);
  const [inProc, isolated] = results;
  console.log(`isolation overhead per call: p50 +${(isolated.p50 - inProc.p50).toFixed(3)} ms, p99 +${(isolated.p99 - inProc.p99).toFixed(3)} ms`);
  console.log(JSON.stringify({ bench: 'isolation-overhead', results }));
}

main().catch((error) => {
  console.error(`isolation-overhead: ${(error as Error).message}`);
  process.exitCode = 1;
});
