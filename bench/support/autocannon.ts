/**
 * Load generation: the autocannon CLI as its own process (never inside the
 * agent's or the runner's event loop), its --json summary parsed. Every run
 * is bounded by a request count or a duration, and by a hard timeout.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { spawnCaptured } from './processes.js';

const AUTOCANNON = path.resolve('node_modules/.bin/autocannon');

export interface Load {
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  /** Exact number of requests. */
  amount?: number;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Replace [<id>] in the body by a fresh id per request. */
  idReplacement?: boolean;
  /** Requests to cycle through (each connection walks the list). */
  requests?: Array<{ method: string; path: string }>;
  /** Where to write the HAR file for `requests`. */
  harFile?: string;
  /** Hard bound on the whole process. */
  timeoutMs?: number;
}

export interface LoadResult {
  /** Completed requests per second over the run. */
  rps: number;
  total: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
  p50: number;
  p90: number;
  p99: number;
  maxMs: number;
  bytesPerS: number;
  statusCodes: Record<string, number>;
  /** Filled in by the caller when it measured the server's CPU time. */
  cpuUsPerRequest?: number;
}

export async function runLoad(load: Load): Promise<LoadResult> {
  const args = [load.url, '--json', '--no-progress', '-c', String(load.connections), '-t', '30'];
  // autocannon ends a run on its next sample tick (1 s by default) after the
  // last answer, and reports that as the duration: a run of an exact count
  // that took 2.1 s read as 3.02 s. Ticks of 100 ms bound that error.
  if (load.amount !== undefined) args.push('-a', String(load.amount), '-L', '100');
  else args.push('-d', String(load.duration ?? 5));
  for (const [key, value] of Object.entries(load.headers ?? {})) args.push('-H', `${key}=${value}`);
  if (load.requests) {
    if (!load.harFile) throw new Error('requests need a harFile');
    const origin = new URL(load.url).origin;
    const har = {
      log: {
        entries: load.requests.map((r) => ({ request: { method: r.method, url: origin + r.path, headers: [] } })),
      },
    };
    await writeFile(load.harFile, JSON.stringify(har));
    args.push('--har', load.harFile);
  } else {
    args.push('-m', load.method ?? 'GET');
    if (load.body !== undefined) args.push('-b', load.body);
    if (load.idReplacement) args.push('-I');
  }
  const timeoutMs = load.timeoutMs ?? ((load.duration ?? 5) * 1000 + 30_000);
  const proc = spawnCaptured(AUTOCANNON, args);
  const timer = setTimeout(() => void proc.stop(2000), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([proc.stdout, proc.stderr, proc.exited]);
  clearTimeout(timer);
  const line = stdout.trim().split('\n').filter(Boolean).pop();
  if (code !== 0 || !line) {
    throw new Error(`autocannon ${args.join(' ')} ended with ${code} (bound ${timeoutMs} ms): ${stderr.slice(-2000)}`);
  }
  const r = JSON.parse(line);
  const statusCodes: Record<string, number> = {};
  for (const [status, value] of Object.entries(r.statusCodeStats ?? {})) statusCodes[status] = (value as { count: number }).count;
  return {
    rps: r.requests.total / r.duration,
    total: r.requests.total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    durationS: r.duration,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    maxMs: r.latency.max,
    bytesPerS: r.throughput.total / r.duration,
    statusCodes,
  };
}
