/**
 * `bash <heavy lock> node dist/bench/container-metrics.js [--write]`
 *
 * Container guests' metrics (issue 23 item 5, target: GET …/metrics/cpu ≥
 * 5,000 req/s through the agent) next to the bare runtime's way to get the
 * same number, in one run: the agent as its own process (bench/support/agent.ts,
 * config/agent.json without QEMU, its log to a file), 10 container guests
 * on real LXC 5 (an image built offline from busybox-static, fetched from
 * Debian's docker-registry on loopback), each with a NIC on a bridge of this
 * run. Through the agent: GET /guests/{id}/metrics/{cpu,nic,disk} with
 * autocannon (its own process; 1 connection and 50, cycling over the
 * guests) and the agent's CPU time per request. Bare: `lxc-info -S` (what
 * LXC itself offers for a container's CPU, I/O and network use) and
 * `lxc-cgroup … cpuacct.usage`, one process per request as a client
 * without the agent would run them, 1 at a time and 50 in flight.
 * Needs root, LXC, skopeo, umoci, docker-registry. Removes every container,
 * the bridge, the registry and the temp dir it made, also on Ctrl-C.
 * --write puts the section into bench/RESULTS.md between its markers.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir } from '../test/support/agent.js';
import { shippedConfig } from '../test/support/configs.js';
import { containerNameOf, removeContainers } from '../test/support/lxc-containers.js';
import { buildBusyboxImage, startRegistry, unmountUnder, type LoopbackRegistry } from '../test/support/oci-registry.js';
import { summarize } from '../test/support/latency.js';
import { startAgent, AUTH, type BenchAgent } from './support/agent.js';
import { runLoad, type LoadResult } from './support/autocannon.js';
import { machineLoad } from './support/machine.js';
import { cpuMsOf } from './support/processes.js';
import { withMarkedSection } from './support/results-file.js';

const run = promisify(execFile);
const BEGIN = '<!-- container-metrics: begin (written by bench/container-metrics.ts) -->';
const END = '<!-- container-metrics: end -->';
const GUESTS = 10;
const CONNECTIONS = [1, 50];
const SECONDS = 5;
/** Bare-runtime calls per measurement (each a process: a few ms to tens of ms). */
const BARE_CALLS = 200;

const cleanups: Array<() => Promise<unknown>> = [];
async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: Error) => console.error(`cleanup: ${error.message}`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().then(() => process.exit(130)));

interface Row {
  what: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  cpuUs?: number;
}

/** autocannon on `paths` (cycled), with the agent's CPU per request. */
async function throughAgent(agent: BenchAgent, work: string, what: string, paths: string[], connections: number): Promise<Row> {
  const load = { url: agent.url, connections, headers: AUTH, requests: paths.map((p) => ({ method: 'GET', path: p })), harFile: path.join(work, 'load.har.json') };
  await runLoad({ ...load, duration: 1 });
  const cpuBefore = (await cpuMsOf(agent.pid)) ?? 0;
  const result: LoadResult = await runLoad({ ...load, duration: SECONDS });
  const cpuMs = ((await cpuMsOf(agent.pid)) ?? 0) - cpuBefore;
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${what}: ${result.non2xx} non-2xx, ${result.errors} errors (${JSON.stringify(result.statusCodes)})`);
  return { what, connections, rps: result.rps, p50: result.p50, p99: result.p99, cpuUs: (cpuMs * 1000) / result.total };
}

/** `argv(i)` run BARE_CALLS times as processes, `inFlight` at once; rate and latency. */
async function bare(what: string, argv: (i: number) => [string, string[]], inFlight: number): Promise<Row> {
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < BARE_CALLS) {
      const [command, args] = argv(next++);
      const t0 = performance.now();
      await run(command, args, { timeout: 30_000 });
      times.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  const latency = summarize(times);
  return { what, connections: inFlight, rps: BARE_CALLS / seconds, p50: latency.p50_ms, p99: latency.p99_ms };
}

async function main(): Promise<void> {
  const write = process.argv.includes('--write');
  const work = await makeTempDir('hk-bench-ctmet-');
  cleanups.push(() => removeDir(work));
  await chmod(work, 0o711);
  const dataDir = path.join(work, 'data');
  const basesDir = path.join(work, 'bases');
  await mkdir(dataDir, { mode: 0o711 });
  const lxcPath = path.join(dataDir, 'plugins', 'lxc', 'containers');
  cleanups.push(() => unmountUnder(work));
  const image = await buildBusyboxImage(work, path.join(work, 'layouts'), 'bench', '1.0', { entrypoint: ['/bin/sh', '-c'], cmd: ['trap "exit 0" TERM; while true; do sleep 1; done'], stopSignal: 'SIGTERM' });
  const registry: LoopbackRegistry = await startRegistry(work);
  cleanups.push(() => registry.stop());
  await registry.push(image, 'bench');
  const bridge = `hkb${process.pid.toString(16).slice(-6)}`;
  await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  cleanups.push(() => run('ip', ['link', 'del', bridge]));
  await run('ip', ['addr', 'add', '10.199.77.1/24', 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);

  const config = shippedConfig('agent.json');
  config.auth = { tokens: [AUTH.authorization.slice('Bearer '.length)] };
  config.accessLog = true;
  config.plugins = config.plugins
    .filter((p: { module: string }) => p.module !== 'qemu')
    .map((p: { module: string; options?: Record<string, unknown> }) =>
      p.module === 'images' ? { ...p, options: { ...p.options, imagesDir: path.join(work, 'images'), containerImagesDir: basesDir } } : p.module === 'lxc' ? { ...p, options: { ...p.options, containerImagesDir: basesDir } } : p,
    );
  const agent = await startAgent({ config, dataDir, workDir: work, label: 'agent-lxc' });
  cleanups.push(() => removeContainers(lxcPath));
  cleanups.push(() => agent.stop());
  const fetched = await agent.post('/images?wait=60', { id: 'bench', type: 'container', source: `docker://127.0.0.1:${registry.port}/bench:1.0` });
  if (fetched.status !== 200) throw new Error(`image fetch: ${fetched.status} ${JSON.stringify(fetched.body)}`);

  const ids: string[] = [];
  for (let i = 0; i < GUESTS; i++) {
    const nic = { network: bridge, address: `10.199.77.${10 + i}`, netmask: '255.255.255.0', gateway: '10.199.77.1' };
    const created = await agent.post('/guests', { type: 'container', image: 'bench', memory: 64, cpu: 1, nics: [nic], disks: null, metadata: null });
    if (created.status !== 202) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    ids.push(created.body.id);
  }
  for (const id of ids) {
    for (let waited = 0; (await agent.get(`/guests/${id}`)).state !== 'running'; waited += 100) {
      if (waited > 60_000) throw new Error(`guest ${id} not running after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const loadAtStart = machineLoad();

  const rows: Row[] = [];
  for (const type of ['cpu', 'nic', 'disk']) {
    for (const connections of CONNECTIONS) rows.push(await throughAgent(agent, work, `agent: GET …/metrics/${type}`, ids.map((id) => `/guests/${id}/metrics/${type}`), connections));
  }
  const names = ids.map(containerNameOf);
  for (const inFlight of CONNECTIONS) rows.push(await bare('bare: lxc-info -S (CPU, I/O, network use)', (i) => ['lxc-info', ['-n', names[i % GUESTS], '-P', lxcPath, '-S', '-H']], inFlight));
  for (const inFlight of CONNECTIONS) rows.push(await bare('bare: lxc-cgroup cpuacct.usage', (i) => ['lxc-cgroup', ['-n', names[i % GUESTS], '-P', lxcPath, 'cpuacct.usage']], inFlight));

  const cpuRow = rows.find((r) => r.what.endsWith('metrics/cpu') && r.connections === 50)!;
  const bareCpu = rows.find((r) => r.what.startsWith('bare: lxc-cgroup') && r.connections === 50)!;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const table = [
    '| how | clients (in flight) | req/s | p50 / p99 ms | agent CPU per request |',
    '| --- | --- | --- | --- | --- |',
    // autocannon reports whole milliseconds: a 0 there is under 1 ms.
    ...rows.map((r) => `| ${r.what} | ${r.connections} | ${fmt(r.rps)} | ${r.cpuUs === undefined ? `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}` : `${r.p50 || '< 1'} / ${r.p99 || '< 1'}`} | ${r.cpuUs === undefined ? '—' : `${fmt(r.cpuUs)} µs`} |`),
  ].join('\n');
  const section = [
    '## Container metrics (bench/container-metrics.ts)',
    '',
    `- date: ${new Date().toISOString()}; ${(await run('lxc-start', ['--version'])).stdout.trim()} (LXC); node ${process.version}; ${GUESTS} running container guests (busybox, one NIC each on a bridge of the run), unprivileged`,
    `- machine (shared with other helpers' tests): at the start ${loadAtStart}; at the end ${machineLoad()}`,
    `- through the agent: autocannon (its own process), ${SECONDS} s per row after 1 s of warm-up, cycling over the guests, auth and access log on; latency in autocannon's whole milliseconds; agent CPU = its user + system time over the run / requests. Bare: ${BARE_CALLS} runs of the command per row, 1 or 50 in flight, as a client without the agent gets the number (each a process)`,
    `- target (issue 23): GET …/metrics/cpu ≥ 5,000 req/s; measured ${fmt(cpuRow.rps)} req/s at 50 clients: ${cpuRow.rps >= 5000 ? 'met' : 'NOT met'}; ${(cpuRow.rps / bareCpu.rps).toFixed(0)}× lxc-cgroup's rate at 50 in flight`,
    '',
    table,
  ].join('\n');
  console.log(section);
  if (write) {
    const file = path.resolve('bench/RESULTS.md');
    await writeFile(file, withMarkedSection(await readFile(file, 'utf8'), BEGIN, END, section));
  }
}

main()
  .catch((error: Error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
