/**
 * The fleet link at scale: 50 simulator agents × 200 guests on one real
 * etcd (loopback). Measures etcd writes per second while guests are created
 * and changed, the time for all 50 mirrors to match again after an etcd
 * restart (with changes made while it was down), and each agent's added
 * RSS and CPU from the link, against control agents without it doing the
 * same work. Writes its section of bench/RESULTS.md.
 *
 *   flock /tmp/hk-heavy.lock node dist/bench/fleet.js [--agents N] [--guests N]
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { simulatorConfig } from '../test/support/configs.js';
import { startEtcd, type EtcdServer } from '../test/support/etcd-server.js';
import { etcdClient, expectedSummary, startFleetAgent, testPrefix } from '../test/fleet/world.js';
import { cpuMsOf, rssOf } from './support/processes.js';
import { fmt, median, MiB } from './support/stats.js';

const { values: flags } = parseArgs({ options: { agents: { type: 'string', default: '50' }, guests: { type: 'string', default: '200' }, control: { type: 'string', default: '5' } } });
const AGENTS = Number(flags.agents);
const GUESTS = Number(flags.guests);
const CONTROL = Number(flags.control);
const LOAD_MS = 30_000;
const IDLE_MS = 20_000;
const OUTAGE_MS = 15_000;
const CONCURRENCY = 32;

interface Member {
  agent: RunningAgent;
  hostId?: string;
  ids: string[];
}

async function etcdCounters(etcd: EtcdServer): Promise<Record<string, number>> {
  const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  const pick = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { proposals: pick('etcd_server_proposals_committed_total'), puts: pick('etcd_mvcc_put_total'), deletes: pick('etcd_mvcc_delete_total'), txns: pick('etcd_mvcc_txn_total') };
}

/** Runs `jobs` with at most `limit` at once. */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    }),
  );
  return results;
}

async function sample(members: Member[]): Promise<{ cpu: number[]; rss: number[] }> {
  const cpu: number[] = [];
  const rss: number[] = [];
  for (const m of members) {
    cpu.push((await cpuMsOf(m.agent.pid)) ?? NaN);
    rss.push((await rssOf(m.agent.pid))?.rss ?? NaN);
  }
  return { cpu, rss };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const deltas = (after: number[], before: number[]) => after.map((v, i) => v - before[i]);

async function main(): Promise<void> {
  const startedAt = Date.now();
  const etcd = await startEtcd();
  const client = etcdClient(etcd.endpoint);
  const prefix = testPrefix();
  const fleet: Member[] = [];
  const control: Member[] = [];
  const lines: string[] = [];
  const log = (s: string) => process.stdout.write(`${s}\n`);
  try {
    // Agents boot in small batches: 55 at once would only measure the scheduler.
    for (let i = 0; i < AGENTS; i += 5) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(5, AGENTS - i) }, (_, j) =>
          startFleetAgent({ endpoint: etcd.endpoint, prefix, hostId: `bench-${i + j}`, leaseTtlSeconds: 10, fleet: {} }),
        ),
      );
      batch.forEach((agent, j) => fleet.push({ agent, hostId: `bench-${i + j}`, ids: [] }));
    }
    for (let i = 0; i < CONTROL; i++) {
      const agent = await startAgent({ config: simulatorConfig({ accessLog: false }), env: { HYPERKERN_LOG_LEVEL: 'info' }, startTimeoutMs: 90_000 });
      control.push({ agent, ids: [] });
    }
    log(`started ${fleet.length} fleet agents and ${control.length} control agents`);
    const all = [...fleet, ...control];
    const baseline = await sample(all);

    // Seeding: every agent creates its guests; etcd writes per second meanwhile.
    let before = await etcdCounters(etcd);
    let t0 = Date.now();
    const creates = all.flatMap((m) =>
      Array.from({ length: GUESTS }, () => async () => {
        const res = await m.agent.request('POST', '/guests?wait=30&start=false', { memory: 512, cpu: 1, metadata: { name: 'seed', other: 'x' } });
        if (res.status !== 200) throw new Error(`create: ${res.status} ${res.text}`);
        m.ids.push(res.body.id);
      }),
    );
    await pool(creates, CONCURRENCY);
    const seedMs = Date.now() - t0;
    const seededAt = Date.now();
    const mirrored = await waitMirrored(client, prefix, fleet, 120_000);
    let after = await etcdCounters(etcd);
    const seedSeconds = (Date.now() - t0) / 1000;
    lines.push(`| seeding: ${fmt(all.length * GUESTS)} creates through the API (${fmt(fleet.length * GUESTS)} on fleet agents), ${CONCURRENCY} at once | API creates/s | ${fmt((all.length * GUESTS) / (seedMs / 1000))} |`);
    lines.push(`|  | etcd write transactions/s (raft proposals) | ${fmt((after.proposals - before.proposals) / seedSeconds)} |`);
    lines.push(`|  | etcd keys put/s | ${fmt((after.puts - before.puts) / seedSeconds)} |`);
    lines.push(`|  | guest changes per etcd transaction | ${fmt((after.puts - before.puts) / Math.max(1, after.proposals - before.proposals), 1)} |`);
    lines.push(`|  | last guest in etcd after the last create answered | ${fmt(mirrored - seededAt)} ms |`);
    log(lines.slice(-5).join('\n'));

    // Steady changes: metadata renames spread evenly over all agents (fleet and control).
    const afterSeed = await sample(all);
    before = await etcdCounters(etcd);
    t0 = Date.now();
    let patches = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, loop) => {
        for (let i = 0; Date.now() - t0 < LOAD_MS && i < 1_000_000; i++) {
          const m = all[(loop + i * CONCURRENCY) % all.length];
          const id = m.ids[(i * 7 + loop) % m.ids.length];
          const res = await m.agent.request('PATCH', `/guests/${id}/metadata`, { name: `n-${i}-${loop}` });
          if (res.status !== 200) throw new Error(`patch: ${res.status} ${res.text}`);
          patches++;
        }
      }),
    );
    const loadSeconds = (Date.now() - t0) / 1000;
    await waitMirrored(client, prefix, fleet, 60_000);
    after = await etcdCounters(etcd);
    const afterLoad = await sample(all);
    const fleetShare = fleet.length / all.length;
    lines.push(`| steady renames (allow-listed metadata) over all agents, ${LOAD_MS / 1000} s | API PATCHes/s (all agents) | ${fmt(patches / loadSeconds)} (${fmt((patches * fleetShare) / loadSeconds)} on fleet agents) |`);
    lines.push(`|  | etcd write transactions/s | ${fmt((after.proposals - before.proposals) / loadSeconds)} |`);
    lines.push(`|  | etcd keys put/s | ${fmt((after.puts - before.puts) / loadSeconds)} |`);

    // Idle: keepalives and the 1 s host-record check only.
    const idleStart = await sample(all);
    before = await etcdCounters(etcd);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    after = await etcdCounters(etcd);
    const idleEnd = await sample(all);
    lines.push(`| idle ${IDLE_MS / 1000} s | etcd write transactions/s | ${fmt((after.proposals - before.proposals) / (IDLE_MS / 1000), 1)} |`);

    // Per-agent cost: fleet agents minus control agents, same work.
    const split = (xs: number[]) => ({ fleet: xs.slice(0, fleet.length), control: xs.slice(fleet.length) });
    const cpuLoad = split(deltas(afterLoad.cpu, afterSeed.cpu));
    const cpuSeed = split(deltas(afterSeed.cpu, baseline.cpu));
    const cpuIdle = split(deltas(idleEnd.cpu, idleStart.cpu));
    const rss = split(idleEnd.rss);
    const perAgent = (d: { fleet: number[]; control: number[] }, seconds: number) =>
      `${fmt(mean(d.fleet) / seconds / 10, 1)} % vs ${fmt(mean(d.control) / seconds / 10, 1)} % (+${fmt((mean(d.fleet) - mean(d.control)) / seconds / 10, 1)} %)`;
    lines.push(`| per agent: fleet agents vs control agents (mean) | CPU while seeding | ${perAgent(cpuSeed, seedSeconds)} of one core |`);
    lines.push(`|  | CPU under the renames | ${perAgent(cpuLoad, loadSeconds)} of one core |`);
    lines.push(`|  | CPU idle | ${perAgent(cpuIdle, IDLE_MS / 1000)} of one core |`);
    lines.push(`|  | RSS (${GUESTS} guests) | ${fmt(median(rss.fleet) / MiB)} MiB vs ${fmt(median(rss.control) / MiB)} MiB (median; +${fmt((median(rss.fleet) - median(rss.control)) / MiB)} MiB) |`);

    // Outage: etcd down while every fleet agent changes guests, then back.
    await etcd.stop();
    t0 = Date.now();
    await pool(
      fleet.map((m) => async () => {
        for (const id of m.ids.splice(0, 10)) await m.agent.request('DELETE', `/guests/${id}?wait=30`);
        for (let i = 0; i < 10; i++) {
          const res = await m.agent.request('POST', '/guests?wait=30&start=false', { memory: 256, cpu: 2, metadata: { name: `outage-${i}` } });
          m.ids.push(res.body.id);
        }
        for (const id of m.ids.slice(0, 20)) await m.agent.request('PATCH', `/guests/${id}/metadata`, { name: 'changed-offline' });
      }),
      CONCURRENCY,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - t0))));
    const downFor = Date.now() - t0;
    await etcd.restart();
    const back = Date.now();
    const converged = await waitMirrored(client, prefix, fleet, 120_000);
    lines.push(`| etcd stopped ${fmt(downFor / 1000)} s while each fleet agent deleted 10, created 10 and renamed 20 guests; then restarted | time from etcd answering again to all ${fleet.length} mirrors matching their agents exactly | ${fmt(converged - back)} ms |`);
    log(lines.join('\n'));

    await writeSection(lines, Date.now() - startedAt);
  } finally {
    client.close();
    for (const m of [...fleet, ...control]) await m.agent.kill9();
    for (const m of [...fleet, ...control]) await removeDir(m.agent.dataDir);
    await etcd.dispose();
  }
}

/**
 * Polls etcd until every fleet agent's guests are mirrored exactly (each
 * agent's GET /guests read once when the agents are quiet); resolves with
 * the time it matched.
 */
async function waitMirrored(client: ReturnType<typeof etcdClient>, prefix: string, fleet: Member[], timeoutMs: number): Promise<number> {
  const wanted = new Map<string, string>();
  for (const m of fleet) {
    const guests = (await m.agent.request('GET', '/guests')).body as any[];
    for (const g of guests) wanted.set(`${prefix}/guests/${m.hostId}/${g.id}`, JSON.stringify(expectedSummary(g, m.hostId!)));
  }
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const raw = await client.getAll().prefix(`${prefix}/guests/`).strings();
      const keys = Object.keys(raw);
      const mismatched = keys.filter((k) => {
        const { seq: _s, ...rest } = JSON.parse(raw[k]);
        return wanted.get(k) !== JSON.stringify(rest);
      }).length;
      const missing = [...wanted.keys()].filter((k) => !(k in raw)).length;
      if (mismatched === 0 && missing === 0) return Date.now();
      last = `${mismatched} keys differ or are stale, ${missing} missing`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`etcd did not match the agents within ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function writeSection(lines: string[], runMs: number): Promise<void> {
  const file = path.join(repoRoot, 'bench/RESULTS.md');
  const text = await readFile(file, 'utf8');
  const section = [
    '## Fleet link (etcd)',
    '',
    `Written by \`flock /tmp/hk-heavy.lock node dist/bench/fleet.js\` (bench/fleet.ts): ${AGENTS} simulator agents with the fleet plugin × ${GUESTS} guests and ${CONTROL} control agents without it (same guests, same per-agent requests), one etcd 3.4 member on loopback (Debian etcd-server, its own data dir), everything on this machine.`,
    '',
    `- date: ${new Date().toISOString()}; node ${process.version}; ${os.cpus().length} CPUs; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; whole run ${fmt(runMs / 1000)} s`,
    '- the agents, etcd and the load generator share the 2 cores, so the per-agent CPU numbers include the contention of 55 processes; the fleet-minus-control difference is the link\'s cost',
    '',
    '| phase | metric | value |',
    '| --- | --- | --- |',
    ...lines,
    '',
  ].join('\n');
  const start = text.indexOf('## Fleet link (etcd)');
  const next = start < 0 ? -1 : text.indexOf('\n## ', start + 1);
  const updated = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${next < 0 ? '' : text.slice(next + 1)}`;
  await writeFile(file, updated.endsWith('\n') ? updated : `${updated}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench/fleet: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
