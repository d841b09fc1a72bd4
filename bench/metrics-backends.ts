/**
 * `flock /tmp/hk-heavy.lock node dist/bench/metrics-backends.js [--requests N] [--only qemu|libvirt] [--profile DIR]`
 *
 * GET /guests/{id}/metrics/{cpu,nic,disk} through the real agent (its own
 * process, test/support/agent.ts) on 10 running guests of each real
 * backend: QEMU under TCG (the tiny guest of test/fixtures/tiny-guest, NICs
 * on a bridge of this run's own, as test/qemu does) and libvirt (10 domains
 * on a libvirtd started as test/libvirt does). Latency p50/p99 with 1 client
 * (sequential) and with 50 concurrent clients on keep-alive connections,
 * cycling over the guests, and the agent's CPU time (user + system, from
 * /proc) per request of each run; next to them the floor each backend sits on: a
 * bare QMP round trip to a QEMU of its own, and one `domstats` through a
 * long-lived virsh shell. Needs root (bridges, libvirtd), QEMU and libvirt.
 * Kills every QEMU and removes every domain, bridge and temp dir it made.
 * Writes its own section of bench/RESULTS.md. --profile DIR: the agents run
 * with `node --cpu-prof` and leave their profiles in DIR (the run then does
 * not write RESULTS.md: the profiler slows the agent).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { QmpClient } from '../plugins/qemu/qmp-client.js';
import { VirshShell } from '../plugins/libvirt/virsh-shell.js';
import { INIT_REACHED } from '../test/fixtures/tiny-guest/index.js';
import { repoRoot } from '../test/support/agent.js';
import { startAgent, type BenchAgent } from './support/agent.js';
import { cpuMsOf } from './support/processes.js';
import { MemoryLogger, waitForConsole } from '../test/support/backend-testing.js';
import { shippedConfig } from '../test/support/configs.js';
import { summarize, type LatencySummary } from '../test/support/latency.js';
import { killTestQemus } from '../test/qemu/kill-test-qemus.js';
import { QemuWorld } from '../test/qemu/world.js';
import { LibvirtWorld, SYSTEM_URI } from '../test/libvirt/world.js';
import { machineLoad } from './support/machine.js';
import { withMarkedSection } from './support/results-file.js';

const BEGIN = '<!-- metrics-backends: begin (written by bench/metrics-backends.ts) -->';
const END = '<!-- metrics-backends: end -->';
const GUESTS = 10;
const CONCURRENT = 50;
/** Requests per endpoint and client count before the measured runs. */
const WARM_UP = 300;
/** The measured requests of each endpoint and client count are taken in this many interleaved rounds. */
const ROUNDS = 5;
const TYPES = ['cpu', 'nic', 'disk'] as const;
/** What is still to be stopped and removed (agents, QEMUs, domains, bridges, libvirtd, temp dirs), also on Ctrl-C. */
const cleanups = new Set<() => Promise<void>>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: cleaning up`);
    void (async () => {
      for (const cleanup of [...cleanups]) await cleanup().catch((error) => console.error(error));
      process.exit(130);
    })();
  });
}

interface Measured extends LatencySummary {
  rps: number;
  /** The agent's user + system CPU time over the measured requests, per request, µs. */
  cpu_us: number;
}

/** One GET on a keep-alive agent; resolves with the status once the body is read. */
function get(agent: http.Agent, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url} took over 30 s`)));
  });
}

/** What one run of GETs gave: each latency, its wall-clock time and the agent's CPU time over it. */
interface Run {
  samples: number[];
  elapsedMs: number;
  cpuMs: number;
}

/** `total` GETs by `clients` concurrent loops, each cycling over the guests; latency of each. */
async function load(base: string, agentPid: number, ids: string[], type: string, clients: number, total: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const samples: number[] = [];
  let next = 0;
  const loop = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      const status = await get(agent, `${base}/guests/${ids[i % ids.length]}/metrics/${type}`);
      samples.push(performance.now() - t0);
      if (status !== 200) throw new Error(`GET /guests/{id}/metrics/${type}: ${status}`);
    }
  };
  try {
    // Connections open, first-call caches (vCPU thread ids) filled.
    await Promise.all(Array.from({ length: clients }, () => get(agent, `${base}/guests/${ids[0]}/metrics/${type}`)));
    const cpuBefore = await cpuMsOf(agentPid);
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, loop));
    const elapsedMs = performance.now() - started;
    const cpuAfter = await cpuMsOf(agentPid);
    return { samples, elapsedMs, cpuMs: cpuBefore === undefined || cpuAfter === undefined ? NaN : cpuAfter - cpuBefore };
  } finally {
    agent.destroy();
  }
}

/** Runs of one endpoint and client count taken together. */
function merge(runs: Run[]): Measured {
  const samples = runs.flatMap((r) => r.samples);
  const elapsedMs = runs.reduce((sum, r) => sum + r.elapsedMs, 0);
  const cpuMs = runs.reduce((sum, r) => sum + r.cpuMs, 0);
  return { ...summarize(samples), rps: (samples.length / elapsedMs) * 1000, cpu_us: Math.round((cpuMs / samples.length) * 1000) };
}

async function timed(n: number, call: () => Promise<unknown>): Promise<LatencySummary> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call();
    samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

async function endpoints(agent: BenchAgent, ids: string[], requests: number, log: (m: string) => void): Promise<Record<string, { one: Measured; many: Measured }>> {
  const out: Record<string, { one: Measured; many: Measured }> = {};
  // Every endpoint warmed before any is measured: a cold agent (JIT, first
  // calls) made whichever endpoint came first look twice as slow.
  for (const type of TYPES) {
    await load(agent.url, agent.pid, ids, type, 1, WARM_UP);
    await load(agent.url, agent.pid, ids, type, CONCURRENT, WARM_UP);
  }
  // Interleaved in rounds, so that what else the shared machine does falls on every endpoint alike.
  const runs = new Map(TYPES.map((type) => [type, { one: [] as Run[], many: [] as Run[] }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const type of TYPES) {
      runs.get(type)!.one.push(await load(agent.url, agent.pid, ids, type, 1, Math.ceil(requests / ROUNDS)));
      runs.get(type)!.many.push(await load(agent.url, agent.pid, ids, type, CONCURRENT, Math.ceil((requests * 2) / ROUNDS)));
    }
  }
  for (const type of TYPES) {
    const one = merge(runs.get(type)!.one);
    const many = merge(runs.get(type)!.many);
    log(`  ${type}: 1 client p50/p99 ${one.p50_ms}/${one.p99_ms} ms, ${one.cpu_us} µs CPU/req; ${CONCURRENT} clients ${many.p50_ms}/${many.p99_ms} ms (${Math.round(many.rps)} req/s), ${many.cpu_us} µs CPU/req`);
    out[type] = { one, many };
  }
  return out;
}

async function qemuCase(requests: number, log: (m: string) => void, nodeArgs: string[]): Promise<{ rows: string[]; notes: string[] }> {
  const world = await QemuWorld.create({ bridge: true });
  let agent: BenchAgent | undefined;
  const ids: string[] = [];
  const stopQemuCase = async () => {
    cleanups.delete(stopQemuCase);
    // Deleted through the agent: its plugin stops each QEMU and removes its tap
    // (stopping the agent alone leaves guests running, by design).
    if (agent) for (const id of ids) await fetch(`${agent.url}/guests/${id}?wait=60`, { method: 'DELETE', signal: AbortSignal.timeout(70_000) }).catch(() => undefined);
    await agent?.stop();
    // Whatever is left, by the pidfiles under the agent's run dirs.
    await killTestQemus(path.join(world.root, 'agent', 'plugins', 'qemu'));
    await killTestQemus(world.root);
    await world.dispose();
  };
  cleanups.add(stopQemuCase);
  try {
    const config = shippedConfig('qemu.json');
    const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
    entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir };
    const images = config.plugins.find((p: { module: string }) => p.module === 'images');
    if (images) images.options = { ...images.options, imagesDir: world.imagesDir };
    agent = await startAgent({ config, dataDir: path.join(world.root, 'agent'), workDir: world.root, label: 'agent-qemu', nodeArgs, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const a = agent;
    log(`QEMU: creating and starting ${GUESTS} tiny guests under TCG`);
    for (let i = 0; i < GUESTS; i++) {
      const res = await a.post('/guests?wait=60', { memory: 128, cpu: 1, disks: [{ size: 16 }], nics: [{ network: world.bridge!.name }], metadata: world.tinyBoot });
      if (res.status !== 200) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    const runDir = (id: string) => path.join(world.root, 'agent', 'plugins', 'qemu', id);
    for (const id of ids) await waitForConsole(path.join(runDir(id), 'console.log'), INIT_REACHED, 180_000);
    const measured = await endpoints(a, ids, requests, log);

    // The floor: a bare QMP round trip to a paused QEMU of its own (the agent
    // holds each guest's only QMP connection), with a qcow2 disk like the
    // guests' so that query-blockstats answers as much as theirs do.
    const argv0 = readFileSync(`/proc/${readFileSync(path.join(runDir(ids[0]), 'qemu.pid'), 'utf8').trim()}/cmdline`, 'utf8').split('\0')[0];
    const floorDir = path.join(world.root, 'floor');
    execFileSync('mkdir', ['-p', floorDir]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(floorDir, 'd.qcow2'), '16M']);
    const launched = spawnSync(argv0, ['-machine', 'q35', '-accel', 'tcg', '-m', '64', '-nodefaults', '-display', 'none', '-S', '-daemonize',
      '-drive', `file=${path.join(floorDir, 'd.qcow2')},if=none,id=drive-vda,format=qcow2`, '-device', 'virtio-blk-pci,drive=drive-vda,id=vda',
      '-pidfile', path.join(floorDir, 'q.pid'), '-qmp', `unix:${path.join(floorDir, 'q.sock')},server=on,wait=off`]);
    if (launched.status !== 0) throw new Error(`floor QEMU: ${launched.stderr}`);
    const qmp = await QmpClient.connect(path.join(floorDir, 'q.sock'));
    const qmpBlock = await timed(requests, () => qmp.execute('query-blockstats'));
    const qmpCpus = await timed(requests, () => qmp.execute('query-cpus-fast'));
    qmp.close();
    process.kill(Number(readFileSync(path.join(floorDir, 'q.pid'), 'utf8')), 'SIGKILL');
    const rows = TYPES.map((t) => row(`QEMU (TCG), ${GUESTS} running guests`, t, measured[t], t === 'cpu' ? 'p50 ≤ 1 ms' : ''));
    rows.push(`| floor: bare QMP round trip, 1 client, a paused QEMU with one qcow2 disk | query-blockstats / query-cpus-fast | ${qmpBlock.p50_ms} / ${qmpBlock.p99_ms} ms; ${qmpCpus.p50_ms} / ${qmpCpus.p99_ms} ms | | | |`);
    const qemuVersion = execFileSync(argv0, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    return {
      rows,
      notes: [
        `QEMU: ${qemuVersion}; ${GUESTS} guests of 1 vCPU and 128 MiB booted to the tiny guest's init under TCG, each with one disk (qcow2) and one NIC on a tap in a bridge of this run's own. cpu reads /proc (vCPU thread ids from one query-cpus-fast per QEMU, then a pread of the process's stat and each vCPU's schedstat, files kept open); disk is one query-blockstats on the guest's QMP connection; nic reads the tap's eight counters from /sys (files kept open).`,
      ],
    };
  } finally {
    await stopQemuCase();
  }
}

async function libvirtCase(requests: number, log: (m: string) => void, nodeArgs: string[]): Promise<{ rows: string[]; notes: string[] }> {
  const world = await LibvirtWorld.create();
  let agent: BenchAgent | undefined;
  const stopLibvirtCase = async () => {
    cleanups.delete(stopLibvirtCase);
    await agent?.stop();
    await world.dispose();
  };
  cleanups.add(stopLibvirtCase);
  try {
    const config = shippedConfig('libvirt.json');
    config.plugins.find((p: { module: string }) => p.module === 'libvirt').options = world.pluginOptions();
    agent = await startAgent({ config, dataDir: path.join(world.root, 'agent'), workDir: world.root, label: 'agent-libvirt', nodeArgs, env: { HYPERKERN_LIBVIRT_URI: '' } });
    const a = agent;
    const ids: string[] = [];
    log(`libvirt: creating and starting ${GUESTS} domains`);
    for (let i = 0; i < GUESTS; i++) {
      const res = await a.post('/guests?wait=60&start=false', { memory: 128, cpu: 1, disks: [{ size: 16 }], nics: [{ network: world.bridge }], metadata: world.tinyBoot });
      if (res.status !== 200) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    for (const id of ids) {
      const res = await a.post(`/guests/${id}/start?wait=60`);
      if (res.status !== 200) throw new Error(`start: ${res.status} ${JSON.stringify(res.body)}`);
    }
    for (const id of ids) await waitForConsole(path.join(world.root, 'agent', 'plugins', 'libvirt', id, 'console.log'), INIT_REACHED, 180_000);
    const measured = await endpoints(a, ids, requests, log);
    const shell = new VirshShell('virsh', SYSTEM_URI, new MemoryLogger(), 30_000);
    const one = await timed(Math.min(requests, 300), () => shell.run(['domstats', '--state', '--block', '--nowait', world.prefix + ids[0]]));
    const all = await timed(Math.min(requests, 300), () => shell.run(['domstats', '--list-active', '--state', '--cpu-total', '--vcpu', '--block', '--interface']));
    await shell.close();
    const version = execFileSync('virsh', ['-c', SYSTEM_URI, 'version', '--daemon'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).join('; ');
    const rows = TYPES.map((t) => row(`libvirt, ${GUESTS} running domains`, t, measured[t], t === 'cpu' ? 'p50 ≤ 2 ms' : ''));
    rows.push(`| floor: one domstats through a long-lived virsh shell, 1 client | one domain (--state --block) / all ${GUESTS} (every group) | ${one.p50_ms} / ${one.p99_ms} ms; ${all.p50_ms} / ${all.p99_ms} ms | | | |`);
    return {
      rows,
      notes: [`libvirt: ${version}; domain type qemu (TCG); the same tiny guest, one disk volume and one NIC on a libvirt network over a bridge of this run's own; the plugin's default statsMaxAgeMs and cpuMetrics (auto: cpu from /proc, QEMU's pid and vCPU threads from libvirt's status file; nic and disk one domstats each).`],
    };
  } finally {
    await stopLibvirtCase();
  }
}

function row(label: string, type: string, m: { one: Measured; many: Measured }, target: string): string {
  const met = target ? (m.one.p50_ms <= Number(/([\d.]+) ms/.exec(target)![1]) ? 'yes' : '**no**') : '';
  const cpu = (r: Measured) => `${r.cpu_us} µs CPU/req`;
  return `| ${type === 'cpu' ? label : ''} | GET …/metrics/${type} | ${m.one.p50_ms} / ${m.one.p99_ms} ms (${Math.round(m.one.rps).toLocaleString('en-US')} req/s, ${cpu(m.one)}) | ${m.many.p50_ms} / ${m.many.p99_ms} ms (${Math.round(m.many.rps).toLocaleString('en-US')} req/s, ${cpu(m.many)}) | ${target} | ${met} |`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '1000' }, only: { type: 'string' }, profile: { type: 'string' }, write: { type: 'boolean', default: true } } });
  const requests = Math.max(50, Number(values.requests) || 1000);
  const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values.profile)}`] : [];
  const began = Date.now();
  const log = (m: string) => console.log(`[${((Date.now() - began) / 1000).toFixed(1).padStart(6)} s] ${m}`);
  const loadAtStart = machineLoad();
  const rows: string[] = [];
  const notes: string[] = [];
  for (const [name, run] of [['qemu', qemuCase], ['libvirt', libvirtCase]] as const) {
    if (values.only && values.only !== name) continue;
    try {
      const r = await run(requests, log, nodeArgs);
      rows.push(...r.rows);
      notes.push(...r.notes);
    } catch (error) {
      log(`${name}: not measured: ${(error as Error).stack ?? error}`);
      rows.push(`| ${name} | not measured | | | | **no** |`);
      notes.push(`${name} could not be measured: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const section = [
    '## QEMU and libvirt metrics (bench/metrics-backends.ts)',
    '',
    `Written by \`flock /tmp/hk-heavy.lock node dist/bench/metrics-backends.js\`: the agent as its own process (bench/support/agent.ts, its log to a file) with the shipped config (auth off, log level info, access log on), ${GUESTS} real running guests per backend, latency of each GET measured by the bench process on loopback (node:http, keep-alive). Every endpoint is first warmed by ${WARM_UP} requests at 1 and at ${CONCURRENT} clients; then 1 client: ${requests} sequential requests per endpoint; ${CONCURRENT} clients: ${requests * 2} requests, ${CONCURRENT} in flight, cycling over the guests; each in ${ROUNDS} rounds interleaved with the other endpoints'. Agent CPU per request: the agent process's user + system time over the run (/proc/PID/stat) divided by its requests; with 2 CPUs shared by the bench, the guests and the agent, it is the agent's own cost where the rate also depends on everything else running.`,
    '',
    `- date: ${new Date().toISOString()}; node ${process.version}; ${os.cpus().length} CPUs; whole run ${Math.round((Date.now() - began) / 1000)} s`,
    `- machine (shared with other helpers' tests): at the start ${loadAtStart}; at the end ${machineLoad()}`,
    '',
    '| backend | endpoint | p50 / p99, 1 client (rate, agent CPU per request) | p50 / p99, 50 clients (rate, agent CPU per request) | target (p50, 1 client) | met |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
  console.log(section);
  // A profiled run is slowed by the profiler: it prints its table but does not record it.
  if (values.write && !values.profile) {
    const file = path.join(repoRoot, 'bench/RESULTS.md');
    await writeFile(file, withMarkedSection(await readFile(file, 'utf8').catch(() => ''), BEGIN, END, section));
    log('wrote its section of bench/RESULTS.md');
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`bench/metrics-backends: ${(error as Error).stack ?? error}`);
    process.exit(1);
  },
);
