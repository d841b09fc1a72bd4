/**
 * `npm run bench [-- --case NAME ...] [--rounds N] [--duration S] [--profile] [--keep]`
 *
 * Starts the agent (dist/core/main.js) as its own process on the simulator
 * with a temp data dir, loads it with autocannon (its own process) on
 * loopback, measures reference servers (bench/ref-*.ts, their own
 * processes) interleaved with it, and writes bench/RESULTS.md. With
 * --case, only the named cases run and RESULTS.md is left alone unless
 * --write is given. The whole run is bounded by --max-minutes (default 10).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cases, Shared, type BenchContext, type CaseResult } from './cases.js';
import { killAll } from './support/processes.js';
import { machineLoad } from './support/machine.js';
import { withOwnSection } from './support/results-file.js';

const USAGE = `usage: npm run bench -- [--case NAME]... [--rounds N] [--duration SECONDS] [--profile] [--keep] [--write]
cases: ${cases.map((c) => c.name).join(', ')}`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      case: { type: 'string', multiple: true },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      'max-minutes': { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      write: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const selected = values.case?.length ? values.case : cases.map((c) => c.name);
  const unknown = selected.filter((n) => !cases.some((c) => c.name === n));
  if (unknown.length) {
    console.error(`unknown case(s) ${unknown.join(', ')}\n${USAGE}`);
    return 2;
  }
  const rounds = Math.max(1, Math.min(9, Number(values.rounds) || 3));
  const duration = Math.max(1, Math.min(60, Number(values.duration) || 5));
  const maxMs = Math.max(1, Number(values['max-minutes']) || 10) * 60_000;
  const full = !values.case?.length;

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'hyperkern-bench-'));
  const began = Date.now();
  const log = (message: string) => console.log(`[${((Date.now() - began) / 1000).toFixed(1).padStart(6)} s] ${message}`);
  const ctx: BenchContext = {
    workDir,
    rounds,
    duration,
    agentNodeArgs: values.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(workDir, 'profiles')}`] : [],
    log,
    shared: undefined as unknown as Shared,
  };
  ctx.shared = new Shared(() => ctx);

  // The whole run is bounded: past the limit every child is killed and the run fails.
  const watchdog = setTimeout(() => {
    console.error(`bench exceeded ${maxMs / 60_000} minutes; stopping every process it started`);
    killAll();
    process.exit(3);
  }, maxMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }

  const loadAtStart = machineLoad();
  log(`work dir ${workDir}; cases ${selected.join(', ')}; ${rounds} rounds of ${duration} s`);
  const results: CaseResult[] = [];
  let failed = false;
  try {
    for (const name of selected) {
      const c = cases.find((k) => k.name === name)!;
      log(`case ${c.name}: ${c.title}`);
      try {
        results.push(await c.run(ctx));
      } catch (error) {
        failed = true;
        log(`case ${c.name} could not be measured: ${(error as Error).message}`);
        results.push({ name: c.name, title: c.title, rows: [{ metric: 'error', value: 'not measured', reference: '', ratio: '', target: '', met: false }], notes: [`The case failed: ${(error as Error).message}`] });
      }
    }
  } finally {
    await ctx.shared.stopAll();
    killAll();
  }
  const elapsed = (Date.now() - began) / 1000;
  const report = render(results, { rounds, duration, elapsed, full, selected, loadAtStart, loadAtEnd: machineLoad() });
  console.log(`\n${table(results)}`);
  if (full || values.write) {
    const file = path.resolve('bench/RESULTS.md');
    const current = existsSync(file) ? await readFile(file, 'utf8') : '';
    await writeFile(file, withOwnSection(current, report));
    log('wrote its section of bench/RESULTS.md');
  }
  if (values.keep || values.profile) log(`kept ${workDir} (agent logs${values.profile ? ', CPU profiles in profiles/' : ''})`);
  else await rm(workDir, { recursive: true, force: true });
  const missed = results.flatMap((r) => r.rows.filter((row) => row.met === false).map((row) => `${r.name}: ${row.metric}`));
  if (missed.length) log(`targets missed: ${missed.join('; ')}`);
  clearTimeout(watchdog);
  return failed ? 1 : 0;
}

function table(results: CaseResult[]): string {
  const lines = ['| case | metric | hyperkern | reference (same run) | ratio | target | met |', '| --- | --- | --- | --- | --- | --- | --- |'];
  for (const r of results) {
    for (const [i, row] of r.rows.entries()) {
      const met = row.met === undefined ? '' : row.met ? 'yes' : '**no**';
      lines.push(`| ${i === 0 ? `\`${r.name}\` ${r.title}` : ''} | ${row.metric} | ${row.value} | ${row.reference} | ${row.ratio} | ${row.target} | ${met} |`);
    }
  }
  return lines.join('\n');
}

function missedLine(results: CaseResult[]): string {
  const missed = results.flatMap((r) => r.rows.filter((row) => row.met === false).map((row) => `\`${r.name}\` ${row.metric}`));
  return missed.length ? `**Targets missed in this run:** ${missed.join('; ')} (see the notes of each case).` : '**Every target was met in this run.**';
}

function render(results: CaseResult[], run: { rounds: number; duration: number; elapsed: number; full: boolean; selected: string[]; loadAtStart: string; loadAtEnd: string }): string {
  const cpus = os.cpus();
  const history = path.resolve('bench/HISTORY.md');
  const parts = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (see docs/benchmarks.md); do not edit by hand.',
    '',
    `- date: ${new Date().toISOString()}`,
    `- node: ${process.version}; ${os.type()} ${os.release()} ${os.arch()}`,
    `- CPUs: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}; memory ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- machine (shared with other helpers' tests): at the start ${run.loadAtStart}; at the end ${run.loadAtEnd}`,
    `- run: ${run.full ? 'all cases' : `cases ${run.selected.join(', ')}`}; ${run.rounds} rounds; ${run.duration} s per timed load run; whole run ${run.elapsed.toFixed(0)} s`,
    '- agent: simulator backend with zero delays, bearer auth on, one access-log line per request (to a file), state in SQLite (WAL); load: autocannon as its own process on 127.0.0.1',
    '- reference servers run as their own processes, measured interleaved with the agent (agent, reference, agent, reference, …), medians over the rounds',
    '',
    table(results),
    '',
    missedLine(results),
    '',
    '## Notes per case',
    '',
  ];
  for (const r of results) {
    parts.push(`### ${r.name}: ${r.title}`, '', ...r.notes.map((n) => `- ${n}`), '');
  }
  if (existsSync(history)) parts.push(readFileSync(history, 'utf8').trim(), '');
  return parts.join('\n');
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`bench: ${(error as Error)?.stack ?? error}`);
    killAll();
    process.exit(1);
  },
);
