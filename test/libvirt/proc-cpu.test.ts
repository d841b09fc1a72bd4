/**
 * cpu metrics of libvirt domains read from /proc (plugins/libvirt/proc-cpu.ts)
 * through the real agent, against a real libvirtd on qemu:///system with the
 * tiny guest under TCG: the same vCPUs and times libvirt's own domstats
 * reports (read right before and after), without a domstats call; a domain
 * stopped and started behind the agent's back (new QEMU pid and vCPU
 * threads) is followed at once; and when /proc cannot answer (the option
 * says domstats, or libvirt's status files are not where the agent looks)
 * libvirt answers instead, with the same numbers.
 */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { waitForConsole } from '../support/backend-testing.js';
import { makeTempDir, removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { cpuMetricsOf, parseDomStats } from '../../plugins/libvirt/domain-stats.js';
import type { GuestCpuMetrics } from '../../core/contract/index.js';
import { LibvirtWorld, SYSTEM_URI, virsh } from './world.js';

/**
 * How far /proc and domstats may differ beyond the time between the reads:
 * libvirt reads vCPU times from /proc/PID/task/TID/stat in clock ticks
 * (10 ms) where /proc here reads schedstat in nanoseconds, and cpu.time may
 * come from the domain's cgroup; a few ticks either way.
 */
const TOLERANCE_S = 0.05;

describe('libvirt cpu metrics from /proc (real libvirtd, tiny guest under TCG)', function () {
  this.timeout(600000); // bounded by the waits below, which scale with the measured load
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  let id: string | undefined;
  const dirs: string[] = [];

  before(async function () {
    this.timeout(300000);
    world = await LibvirtWorld.create();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  after(async function () {
    if (!world) return;
    await world.dispose();
    for (const dir of dirs) await Promise.all([removeDir(dir), rm(`${dir}.config.json`, { force: true })]);
    expect(await world.qemuPids(), 'QEMU processes left behind').to.deep.equal([]);
  });

  async function start(options: Record<string, unknown> = {}, dataDir?: string): Promise<RunningAgent> {
    agent = await startAgent({ config: world.config(options), dataDir, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    if (!dirs.includes(agent.dataDir)) dirs.push(agent.dataDir);
    return agent;
  }
  const domainOf = (guestId: string) => world.prefix + guestId;
  const consoleLog = (a: RunningAgent, guestId: string) => path.join(a.dataDir, 'plugins', 'libvirt', guestId, 'console.log');

  async function cpu(a: RunningAgent, guestId: string): Promise<GuestCpuMetrics[]> {
    const res = await a.request('GET', `/guests/${guestId}/metrics/cpu`);
    expect(res.status, `cpu metrics: ${res.text}`).to.equal(200);
    return res.body;
  }
  /** What libvirt says, in the wire shape (domain-stats.ts's cpuMetricsOf defines it). */
  async function domstats(guestId: string): Promise<GuestCpuMetrics[]> {
    const out = await virsh(SYSTEM_URI, 'domstats', '--cpu-total', '--vcpu', domainOf(guestId));
    const metrics = cpuMetricsOf(parseDomStats(out).get(domainOf(guestId)) ?? new Map());
    expect(metrics, `domstats of ${domainOf(guestId)}: ${out}`).to.be.an('array');
    return metrics!;
  }
  /** The libvirt plugin's health details. */
  async function details(a: RunningAgent): Promise<any> {
    const body = (await a.request('GET', '/health')).body;
    const find = (v: any): any => (v && typeof v === 'object' ? ('statsReads' in v ? v : Object.values(v).map(find).find(Boolean)) : undefined);
    const found = find(body);
    expect(found, `libvirt details in ${JSON.stringify(body)}`).to.be.an('object');
    return found;
  }
  /** domstats, the agent, domstats again: the agent's numbers lie between libvirt's, and rise from `previous`. */
  async function consistentRead(a: RunningAgent, guestId: string, previous?: GuestCpuMetrics[], booted = true): Promise<GuestCpuMetrics[]> {
    const before = await domstats(guestId);
    const got = await cpu(a, guestId);
    const after = await domstats(guestId);
    const what = `agent ${JSON.stringify(got)}; domstats before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`;
    expect(got, `one entry per vCPU: ${what}`).to.have.length(after.length);
    got.forEach((entry, i) => {
      for (const key of ['vcpu_time', 'cpu_time'] as const) {
        expect(entry[key], `vCPU ${i} ${key}: ${what}`).to.be.within(before[i][key] - TOLERANCE_S, after[i][key] + TOLERANCE_S);
        if (previous) expect(entry[key], `vCPU ${i} ${key} never falls: before ${previous[i][key]}, now ${entry[key]}`).to.be.at.least(previous[i][key]);
      }
      expect(entry.cpu_time, 'the whole domain runs at least its vCPUs').to.be.at.least(entry.vcpu_time - TOLERANCE_S);
      if (booted) expect(entry.vcpu_time, 'a booted guest has used its vCPU').to.be.greaterThan(0);
    });
    return got;
  }
  async function bootWait(a: RunningAgent, guestId: string, from = 0): Promise<void> {
    await waitForConsole(consoleLog(a, guestId), INIT_REACHED, Math.max(underLoad(60000), FIRST_BOOT_MS), from);
  }

  it('reports the vCPUs and times libvirt does, from /proc, and follows a domain restarted behind its back', async () => {
    const a = await start();
    const created = await a.request('POST', '/guests?wait=60&start=false', { memory: 128, cpu: 2, metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id as string;
    expect((await a.request('POST', `/guests/${id}/start?wait=90`)).status).to.equal(200);
    await bootWait(a, id);
    const d0 = await details(a);

    let last: GuestCpuMetrics[] | undefined;
    for (let round = 0; round < 3; round++) last = await consistentRead(a, id, last);
    expect(last, 'two vCPUs, two entries').to.have.length(2);
    const d1 = await details(a);
    expect(d1.statsReads.cpu, 'no domstats call for cpu metrics').to.equal(d0.statsReads.cpu);
    expect(d1.cpuMetricsFromProc.proc - d0.cpuMetricsFromProc.proc).to.equal(3);
    expect(d1.cpuMetricsFromProc.fallback).to.equal(d0.cpuMetricsFromProc.fallback);

    // Stopped and started with virsh: a new QEMU with new vCPU threads, asked for before any event may have arrived.
    const [pid0] = await world.qemuPids();
    const consoleBefore = statSync(consoleLog(a, id)).size;
    await virsh(SYSTEM_URI, 'destroy', domainOf(id));
    const stopped = await a.request('GET', `/guests/${id}/metrics/cpu`);
    expect(stopped.status, `a stopped domain: ${stopped.text}`).to.equal(409);
    await virsh(SYSTEM_URI, 'start', domainOf(id));
    const [pid1] = await world.qemuPids();
    expect(pid1, 'a new QEMU').to.be.a('number').and.not.equal(pid0);
    await consistentRead(a, id, undefined, false);
    // The console log is appended to (append='on'): wait for the new boot's init.
    await bootWait(a, id, consoleBefore);
    last = undefined;
    for (let round = 0; round < 2; round++) last = await consistentRead(a, id, last);
    const d2 = await details(a);
    expect(d2.statsReads.cpu - d1.statsReads.cpu, 'libvirt asked only about the stopped domain').to.equal(1);
    expect(d2.cpuMetricsFromProc.fallback - d1.cpuMetricsFromProc.fallback).to.equal(1);
    expect(d2.cpuMetricsFromProc.proc - d1.cpuMetricsFromProc.proc).to.equal(3);
  });

  it('asks libvirt when told to, or when it cannot read libvirt\'s status files, with the same numbers', async () => {
    expect(id, 'the guest of the test before').to.be.a('string');
    const guestId = id!;
    // The same agent data (and running guest) under other options.
    const dataDir = dirs[0];
    let a = await start({ cpuMetrics: 'domstats' }, dataDir);
    let d0 = await details(a);
    expect(d0.cpuMetricsFromProc).to.equal('off');
    expect(a.logs.some((l) => l.includes('"cpuMetrics":"virsh domstats (cpuMetrics option)"')), 'the log says why').to.equal(true);
    let last = await consistentRead(a, guestId);
    last = await consistentRead(a, guestId, last);
    expect((await details(a)).statsReads.cpu - d0.statsReads.cpu).to.equal(2);
    await a.stop();

    const elsewhere = await makeTempDir('hkt-no-status-');
    dirs.push(elsewhere);
    a = await start({ qemuStateDir: elsewhere }, dataDir);
    expect(a.logs.some((l) => l.includes('"cpuMetrics":"/proc')), 'the log says where cpu metrics come from').to.equal(true);
    d0 = await details(a);
    await consistentRead(a, guestId);
    const d1 = await details(a);
    expect(d1.statsReads.cpu - d0.statsReads.cpu).to.equal(1);
    expect(d1.cpuMetricsFromProc.fallback - d0.cpuMetricsFromProc.fallback).to.equal(1);
    expect(d1.cpuMetricsFromProc.proc).to.equal(d0.cpuMetricsFromProc.proc);
    expect((await a.request('DELETE', `/guests/${guestId}?wait=60`)).status).to.equal(200);
    expect(await world.domains()).to.deep.equal([]);
  });
});
