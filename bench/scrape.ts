/**
 * GET /metrics under load (issue 12): scrape latency with 1,000 simulated
 * guests and with 10 QEMU guests (TCG, no OS), and the agent's request rate
 * (GET /guests/{id}) with and without a scrape every second. Writes its own
 * section of bench/RESULTS.md between markers, leaving the rest as is.
 *   node dist/bench/scrape.js     (run under flock /tmp/hk-heavy.lock)
 *   node dist/bench/scrape.js --guests 10000 --simulator-only
 * times the simulated case alone with that many guests and prints it
 * without writing RESULTS.md (more guests than the registry keeps parsed,
 * 2,048, is where a sweep that looks guests up by id parses them again).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AUTH, startAgent } from './support/agent.js';
import { runLoad } from './support/autocannon.js';
import { seed, snapshot } from './support/fleet.js';
import { killAll, spawnNode, freePort, waitFor200 } from './support/processes.js';
import { fmt, median } from './support/stats.js';

const BEGIN = '<!-- scrape bench: begin (written by bench/scrape.ts) -->';
const END = '<!-- scrape bench: end -->';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function scrapeTimes(url: string, count: number): Promise<{ ms: number[]; bytes: number; late: number }> {
  const ms: number[] = [];
  let bytes = 0;
  let late = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/metrics`, { headers: AUTH, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    ms.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${text.slice(0, 200)}`);
    bytes = text.length;
    late = Math.max(late, ...[...text.matchAll(/^hyperkern_metrics_sweep_late_guests\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1])));
  }
  return { ms, bytes, late };
}

async function simulated(workDir: string, guests: number) {
  const agent = await startAgent({ dataDir: path.join(workDir, 'sim-data'), workDir, label: 'scrape-sim' });
  try {
    await seed(agent, guests);
    const fleet = await snapshot(agent, workDir, 'scrape-sim');
    const running = (JSON.parse(fleet.listText) as Array<{ state: string }>).filter((g) => g.state === 'running').length;
    await scrapeTimes(agent.url, 3); // warm-up
    const scrapes = await scrapeTimes(agent.url, 20);
    const load = { url: `${agent.url}/guests/${fleet.ids[0]}`, connections: 10, duration: 10, headers: AUTH, timeoutMs: 60_000 };
    const quiet = await runLoad(load);
    let scraping = true;
    const during: number[] = [];
    const loop = (async () => {
      while (scraping) {
        const t0 = performance.now();
        during.push((await scrapeTimes(agent.url, 1)).ms[0]);
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t0))));
      }
    })();
    const scraped = await runLoad(load);
    scraping = false;
    await loop;
    return { running, scrapes, quiet, scraped, during };
  } finally {
    await agent.stop();
  }
}

async function qemu(workDir: string) {
  const config = JSON.parse(await readFile(path.resolve('config/qemu.json'), 'utf8'));
  const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
  entry.options = { ...entry.options, accel: 'tcg', imagesDir: path.join(workDir, 'images') };
  config.auth = { tokens: [AUTH.authorization.slice('Bearer '.length)] };
  config.logLevel = 'warn';
  const configFile = path.join(workDir, 'scrape-qemu.config.json');
  await writeFile(configFile, JSON.stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = path.join(workDir, 'q');
  const proc = spawnNode(path.resolve('dist/core/main.js'), ['--config', configFile, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], path.join(workDir, 'scrape-qemu.log'), {
    env: { ...process.env, HYPERKERN_QEMU_ACCEL: 'tcg' },
  });
  const ids: string[] = [];
  try {
    await waitFor200(`${url}/guests`, AUTH, 60_000, performance.now(), proc.exited);
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${url}/guests?wait=120`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ memory: 64, cpu: 1, disks: [{ size: 16 }], nics: [{}] }),
        signal: AbortSignal.timeout(150_000),
      });
      const guest = (await res.json()) as { id: string; state: string };
      if (guest.state !== 'running') throw new Error(`QEMU guest ${i} is ${guest.state}`);
      ids.push(guest.id);
    }
    await scrapeTimes(url, 2);
    return { scrapes: await scrapeTimes(url, 20) };
  } finally {
    for (const id of ids) {
      await fetch(`${url}/guests/${id}/poweroff?wait=60`, { method: 'POST', headers: AUTH, signal: AbortSignal.timeout(70_000) }).catch(() => undefined);
    }
    await proc.stop(30_000);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const guestsArg = args.indexOf('--guests');
  const guests = guestsArg >= 0 ? Number(args[guestsArg + 1]) : 1000;
  if (!Number.isSafeInteger(guests) || guests < 1) throw new Error('--guests takes a number of guests');
  const simulatorOnly = args.includes('--simulator-only');
  const workDir = await mkdtemp(path.join(tmpdir(), 'hk-scrape-bench-'));
  const started = Date.now();
  try {
    const sim = await simulated(workDir, guests);
    const row = (label: string, s: { ms: number[]; bytes: number; late: number }) =>
      `| ${label} | ${fmt(median(s.ms), 1)} / ${fmt(percentile(s.ms, 95), 1)} / ${fmt(Math.max(...s.ms), 1)} ms | ${fmt(s.bytes / 1024)} KiB | ${s.late} |`;
    if (simulatorOnly) {
      process.stdout.write(
        [
          `- date: ${new Date().toISOString()}; whole run ${Math.round((Date.now() - started) / 1000)} s; node ${process.version}`,
          '| agent | scrape p50 / p95 / max | exposition size | late guests (worst scrape) |',
          '| --- | --- | --- | --- |',
          row(`simulator, ${fmt(guests)} guests (${sim.running} running)`, sim.scrapes),
          `| GET /guests/{id}, 10 connections, 10 s: not scraped ${fmt(sim.quiet.rps)} req/s; scraped every second (${sim.during.length} scrapes, p50 ${fmt(median(sim.during), 1)} ms) ${fmt(sim.scraped.rps)} req/s |`,
        ].join('\n') + '\n',
      );
      return;
    }
    const q = await qemu(workDir);
    const section = [
      BEGIN,
      '## GET /metrics (bench/scrape.ts)',
      '',
      `- date: ${new Date().toISOString()}; whole run ${Math.round((Date.now() - started) / 1000)} s; node ${process.version}`,
      '- scrape: sequential GET /metrics with bearer auth, 20 timed after warm-up; each runs one sweep of the cpu, nic and disk stages over every running guest (16 calls in flight per stage, 5 s deadline)',
      '',
      '| agent | scrape p50 / p95 / max | exposition size | late guests (worst scrape) |',
      '| --- | --- | --- | --- |',
      row(`simulator, ${fmt(guests)} guests (${sim.running} running)`, sim.scrapes),
      row('QEMU (TCG), 10 running guests without an OS', q.scrapes),
      '',
      '| GET /guests/{id}, 10 connections, 10 s (simulator, 1,000 guests) | req/s | p50 / p99 |',
      '| --- | --- | --- |',
      `| not scraped | ${fmt(sim.quiet.rps)} | ${sim.quiet.p50} / ${sim.quiet.p99} ms |`,
      `| scraped every second (${sim.during.length} scrapes, p50 ${fmt(median(sim.during), 1)} ms under the load) | ${fmt(sim.scraped.rps)} (${fmt((sim.scraped.rps / sim.quiet.rps) * 100)} %) | ${sim.scraped.p50} / ${sim.scraped.p99} ms |`,
      END,
    ].join('\n');
    const resultsFile = path.resolve('bench/RESULTS.md');
    const current = await readFile(resultsFile, 'utf8');
    const begin = current.indexOf(BEGIN);
    const end = current.indexOf(END);
    const next = begin >= 0 && end > begin ? current.slice(0, begin) + section + current.slice(end + END.length) : `${current.trimEnd()}\n\n${section}\n`;
    await writeFile(resultsFile, next);
    process.stdout.write(`${section}\n`);
  } finally {
    killAll();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  killAll();
  process.exit(1);
});
