/**
 * Per-call overhead of an isolated plugin: p50/p99 latency of
 * GET /guests/{id}/metrics/cpu with the simulator in-process versus the same
 * module with "isolate": true (one MessagePack-RPC round trip to a child
 * process per call). Sequential requests on one keep-alive connection over
 * loopback, after a warm-up, so the difference between the two runs is the
 * isolation hop and nothing else.
 *
 *   npx tsc -p . && node dist/bench/isolation-overhead.js [--requests 2000] [--warmup 300]
 *
 * Bounded: a fixed number of requests per mode, each with a 10 s deadline.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { removeDir, startAgent } from '../test/support/agent.js';
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(mode: 'in-process' | 'isolated', requests: number, warmup: number): Promise<Result> {
  const config = simulatorConfig({ accessLog: false, logLevel: 'info' });
  for (const plugin of config.plugins) if (plugin.module === 'simulator') plugin.isolate = mode === 'isolated';
  // Info level: the launcher waits for the "listening" line; with access logs off no request is logged.
  const agent = await startAgent({ config, env: { HYPERKERN_LOG_LEVEL: 'info' } });
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 60_000 });
  try {
    const created = await agent.request('POST', '/guests?wait=10', { memory: 512, cpu: 2 });
    if (created.status !== 200) throw new Error(`create failed: ${created.status} ${created.text}`);
    const started = await agent.request('POST', `/guests/${created.body.id}/start?wait=10`);
    if (started.status !== 200) throw new Error(`start failed: ${started.status} ${started.text}`);
    const url = `${agent.url}/guests/${created.body.id}/metrics/cpu`;
    const once = async () => {
      const res = await request(url, { dispatcher, signal: AbortSignal.timeout(10_000) });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`metrics answered ${res.statusCode}`);
    };
    for (let i = 0; i < warmup; i++) await once();
    const times: number[] = [];
    for (let i = 0; i < requests; i++) {
      const t0 = performance.now();
      await once();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const round = (n: number) => Math.round(n * 1000) / 1000;
    return {
      mode,
      requests,
      p50: round(percentile(times, 50)),
      p90: round(percentile(times, 90)),
      p99: round(percentile(times, 99)),
      mean: round(times.reduce((a, b) => a + b, 0) / times.length),
      max: round(times[times.length - 1]),
    };
  } finally {
    await dispatcher.close();
    await agent.stop();
    await removeDir(agent.dataDir);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, warmup: { type: 'string', default: '300' } } });
  const requests = Math.min(100_000, Math.max(1, Number(values.requests)));
  const warmup = Math.min(100_000, Math.max(0, Number(values.warmup)));
  const results = [await measure('in-process', requests, warmup), await measure('isolated', requests, warmup)];
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
