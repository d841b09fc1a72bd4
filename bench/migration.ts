/**
 * Migration benchmark (issue 24): the tiny guest with 256 MiB of RAM and a
 * 1 GiB disk with 100 MiB written, moved live between two real agents on
 * loopback (QEMU under TCG), next to QEMU's own migration of the same guest
 * done by hand over QMP on the same link in the same run
 * (support/migration-by-hand.ts): the same command line (read from the
 * agent's QEMU), the same disk content and RAM state (the reference guest
 * writes the same 100 MiB through its page cache), the same steps and
 * settings the agent uses (a target QEMU with `-incoming defer`, its disk
 * exported over NBD, drive-mirror until BLOCK_JOB_READY, migrate with a
 * 300 ms downtime limit until the MIGRATION event, the mirror ended, the
 * target resumed). Total time, downtime as QEMU reports it, and downtime as
 * the guest's console counter shows it (support/guest-clock.ts); and where
 * each side's time goes, step by step.
 *
 *   npm run build && bash heavy.sh node dist/bench/migration.js   (alone: no other QEMU or benchmark running)
 *
 * Writes its section of bench/RESULTS.md (between the migration bench markers).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { withMarkedSection } from './support/results-file.js';
import { machineLoad } from './support/machine.js';
import { ClockReader, CLOCK_LOOP, guestDowntime } from './support/guest-clock.js';
import { bootReference, handMove, PROMPT, WRITE_100_MIB, type Run } from './support/migration-by-hand.js';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { openConsole, type ConsoleViewerClient } from '../test/support/console-client.js';
import { INIT_REACHED } from '../test/fixtures/tiny-guest/index.js';
import { killTestQemus } from '../test/qemu/kill-test-qemus.js';
import { QemuWorld } from '../test/qemu/world.js';
import { tcgQemuConfig } from '../test/support/configs.js';

const BEGIN = '<!-- migration bench: begin (written by node dist/bench/migration.js) -->';
const END = '<!-- migration bench: end -->';
const TARGET = { downtimeMs: 300, totalRatio: 1.5 };

/** A move's time split into the same steps on both sides (ms). */
interface Steps {
  prepare?: number;
  disks?: number;
  memory?: number;
  switchOver?: number;
  rest?: number;
}

/** The agents' steps, from the laps in the job's message ("(preparing 91 ms, disks 408 ms, ...)"). */
function agentSteps(run: Run): Steps {
  const lap = (name: string) => {
    const m = new RegExp(`${name} (\\d+) ms`).exec(run.message ?? '');
    return m ? Number(m[1]) : undefined;
  };
  const [prepare, disks, memory, ending, switching] = ['preparing', 'disks', 'memory', 'ending the disk copies', 'switching over'].map(lap);
  const switchOver = ending !== undefined && switching !== undefined ? ending + switching : undefined;
  const known = [prepare, disks, memory, switchOver];
  const rest = known.every((v) => v !== undefined) ? run.totalMs - known.reduce((sum: number, v) => sum + v!, 0) : undefined;
  return { prepare, disks, memory, switchOver, rest };
}

/** The reference's steps, from its timeline. */
function handSteps(run: Run): Steps {
  const at = run.phases ?? {};
  return { prepare: at.exported, disks: at['disks ready'] - at.exported, memory: at['memory copied'] - at['disks ready'], switchOver: run.totalMs - at['memory copied'], rest: 0 };
}

/** Boots the guest on the agent, writes 100 MiB to its disk, starts the clock loop. */
async function prepareGuest(agent: RunningAgent, world: QemuWorld): Promise<{ id: string; viewer: ConsoleViewerClient; clock: ClockReader }> {
  const created = await agent.request('POST', '/guests?wait=600', { memory: 256, cpu: 1, disks: [{ size: 1024 }], metadata: world.tinyBoot });
  if (created.status !== 200) throw new Error(`create answered ${created.status}: ${created.text}`);
  const id = (created.body as { id: string }).id;
  const viewer = await openConsole(agent.url, id);
  await viewer.waitFor(new RegExp(INIT_REACHED), 300_000);
  viewer.type('\r');
  await viewer.waitFor(PROMPT, 120_000);
  const mark = viewer.received().length;
  viewer.type(WRITE_100_MIB);
  await viewer.waitFor(/written-2/, 900_000, mark);
  const clock = new ClockReader();
  viewer.ws.on('message', (data: Buffer) => clock.feed(data));
  viewer.type(CLOCK_LOOP);
  await new Promise((r) => setTimeout(r, 2000));
  return { id, viewer, clock };
}

/**
 * The move through the agents as a client waiting for it sees it: POST
 * migrate with ?wait, answered when its job is Complete (the job log's end
 * event, no poll). Meanwhile GET /jobs shows the phases (every 25 ms), and
 * the target's console is opened as soon as the guest is registered there
 * (it stays open: the next move's source). Neither watcher holds up the other.
 */
async function agentMove(a: RunningAgent, b: RunningAgent, id: string, sourceClock: ClockReader): Promise<{ run: Run; viewer: ConsoleViewerClient; clock: ClockReader }> {
  const before = await a.request('GET', '/metrics');
  const started = performance.now();
  const phases: Record<string, number> = {};
  const clock = new ClockReader();
  let done = false;
  const answered = a.request('POST', `/guests/${id}/migrate?wait=600`, { url: b.url }).then((answer) => {
    done = true;
    return { answer, at: performance.now() };
  });
  const showPhases = async () => {
    while (!done) {
      const jobs = (await a.request('GET', '/jobs?limit=5')).body as Array<{ GuestID: string; Action: string; Status: string; Migration?: { phase: string } }>;
      const job = jobs.find((j) => j.GuestID === id && j.Action === 'migrate' && j.Status === 'Running');
      if (job?.Migration && phases[job.Migration.phase] === undefined) phases[job.Migration.phase] = Math.round(performance.now() - started);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const targetConsole = async (): Promise<ConsoleViewerClient> => {
    for (let i = 0; (await b.request('GET', `/guests/${id}`)).status !== 200; i++) {
      if (done && i > 100) throw new Error('the guest never appeared on the target');
      await new Promise((r) => setTimeout(r, 20));
    }
    const viewer = await openConsole(b.url, id);
    viewer.ws.on('message', (data: Buffer) => clock.feed(data));
    return viewer;
  };
  const [{ answer, at }, viewer] = await Promise.all([answered, targetConsole(), showPhases()]);
  if (answer.status !== 200) throw new Error(`the move answered ${answer.status}: ${answer.text}`);
  const totalMs = at - started;
  const job = (await a.request('GET', `/jobs/${answer.headers.get('x-guest-job-id')}`)).body as { Message: string };
  await new Promise((r) => setTimeout(r, 1500));
  // The source counts the downtime QEMU reported for its move.
  const after = await a.request('GET', '/metrics');
  const downtime = downtimeSum(after) - downtimeSum(before);
  const memoryBytes = memorySent(after) - memorySent(before);
  return { run: { totalMs, phases, message: job.Message, memoryBytes, qemuDowntimeMs: downtime * 1000, guestDowntimeMs: guestDowntime(sourceClock, clock, started) }, viewer, clock };
}

/** The RAM an agent sent as a source (bytes). */
function memorySent(metrics: { text: string }): number {
  const sum = /hyperkern_migration_bytes_sent_total\{kind="memory"\} ([\d.e+-]+)/.exec(metrics.text);
  return sum ? Number(sum[1]) : 0;
}

/** The sum of the downtimes an agent counted as a source (seconds). */
function downtimeSum(metrics: { text: string }): number {
  const sum = /hyperkern_migration_downtime_seconds_sum ([\d.e+-]+)/.exec(metrics.text);
  return sum ? Number(sum[1]) : 0;
}


const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${Math.round(v)} ms`);
const mib = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${(bytes / (1 << 20)).toFixed(1)} MiB`);
const timelineOf = (run: Run) => Object.entries(run.phases ?? {}).map(([phase, at]) => `${phase} ${at} ms`).join(', ');

const ROUNDS = 9;
const median = (values: (number | undefined)[]): number | undefined => {
  const known = values.filter((v): v is number => v !== undefined).sort((x, y) => x - y);
  return known.length ? known[Math.floor(known.length / 2)] : undefined;
};
const row = (runs: Run[]) => ({ totalMs: median(runs.map((r) => r.totalMs))!, qemuDowntimeMs: median(runs.map((r) => r.qemuDowntimeMs)), guestDowntimeMs: median(runs.map((r) => r.guestDowntimeMs)) });
const each = (runs: Run[], pick: (r: Run) => number | undefined) => runs.map((r) => ms(pick(r)).replace(' ms', '')).join(' / ');

async function main(): Promise<void> {
  const world = await QemuWorld.create();
  const env = { HYPERKERN_QEMU_ACCEL: 'tcg', HYPERKERN_LOG_LEVEL: 'info' };
  const agents: RunningAgent[] = [];
  const pids: number[] = [];
  const work = await makeTempDir('hk-mig-bench-');
  const loadAtStart = machineLoad();
  try {
    agents.push(await startAgent({ config: tcgQemuConfig(world.imagesDir), env }), await startAgent({ config: tcgQemuConfig(world.imagesDir), env }));
    const [a, b] = agents;
    const prepared = await prepareGuest(a, world);
    const { id } = prepared;
    const runDir = path.join(a.dataDir, 'plugins', 'qemu', id);
    const pid = Number((await readFile(path.join(runDir, 'qemu.pid'), 'utf8')).trim());
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    // The reference: the same command line, a copy of the same disk (100 MiB written), booted beside the agents' guest.
    execFileSync('qemu-img', ['convert', '-U', '-O', 'qcow2', path.join(runDir, 'vda.qcow2'), path.join(work, 'vda.qcow2')]);
    let hand = await bootReference(args, runDir, work, pids);
    let viewer = prepared.viewer;
    let clock = prepared.clock;
    const agentRuns: Run[] = [];
    const handRuns: Run[] = [];
    // Rounds alternate the two, so both see the same machine; the agents' guest goes A -> B -> A -> B.
    for (let round = 0; round < ROUNDS; round++) {
      const byHand = async () => {
        const moved = await handMove(hand, args, runDir, path.join(work, `hand-${round + 1}`), pids);
        hand = moved.to;
        handRuns.push(moved.run);
        return moved;
      };
      const [from, to] = round % 2 === 0 ? [a, b] : [b, a];
      // Which goes first alternates too: neither move always follows the other's clean-up.
      const moved = round % 2 === 0 ? await byHand() : undefined;
      const next = await agentMove(from, to, id, clock);
      await viewer.close();
      ({ viewer, clock } = next);
      agentRuns.push(next.run);
      const handRun = moved ?? (await byHand());
      process.stdout.write(
        `round ${round + 1}: agents ${ms(next.run.totalMs)} (downtime ${ms(next.run.qemuDowntimeMs)} QEMU, ${ms(next.run.guestDowntimeMs)} guest; ${timelineOf(next.run)}; ${next.run.message}), ` +
          `by hand ${ms(handRun.run.totalMs)} (${ms(handRun.run.qemuDowntimeMs)}, ${ms(handRun.run.guestDowntimeMs)}; ${timelineOf(handRun.run)}; ${mib(handRun.run.memoryBytes)} of memory; ${handRun.run.message})\n`,
      );
    }
    await viewer.close();
    const agent = row(agentRuns);
    const reference = row(handRuns);
    const last = agentRuns[agentRuns.length - 1];
    const met = (agent.qemuDowntimeMs ?? Infinity) <= TARGET.downtimeMs && (agent.guestDowntimeMs ?? Infinity) <= TARGET.downtimeMs && agent.totalMs <= reference.totalMs * TARGET.totalRatio;
    const steps = (pick: (s: Steps) => number | undefined) => [ms(median(agentRuns.map((r) => pick(agentSteps(r))))), ms(median(handRuns.map((r) => pick(handSteps(r)))))];
    const rows = [
      '## Live migration (issue 24)',
      '',
      `Tiny guest, 256 MiB RAM, 1 GiB disk with 100 MiB written (random, through the guest's page cache), QEMU under TCG, two agents on loopback; run ${new Date().toISOString().slice(0, 16)}Z on a shared 2-core machine; medians of ${ROUNDS} rounds, each a move by hand and one through the agents, which goes first alternating (every round's value after the median). ` +
        "QEMU by hand: a second guest from the same command line and a copy of the same disk, which writes the same 100 MiB in it after its boot (so its RAM holds what the agents' guest's does: " +
        `${mib(median(handRuns.map((r) => r.memoryBytes)))} of RAM sent by hand, ${mib(median(agentRuns.map((r) => r.memoryBytes)))} by the agents), moved with the same steps over QMP (target with -incoming defer, NBD export, drive-mirror until BLOCK_JOB_READY, migrate with downtime-limit 300 ms and max-bandwidth 10 GiB/s until the MIGRATION event "completed", mirror ended, cont), timed from the target's disk creation to its cont. ` +
        'Through the agents: from POST /guests/{id}/migrate?wait to its answer (the job Complete). ' +
        `The machine (shared with other helpers' tests): at the start ${loadAtStart}; at the end ${machineLoad()}. ` +
        "Guest's view: the guest prints its uptime every 10 ms; a line's arrival time minus the uptime it shows grows by the pause; the least of that over the target's first second of lines minus the least over the source's last second (the line with the least console lag on each side).",
      '',
      "| move | total | downtime (QEMU) | downtime (guest's counter) | target | met |",
      '| --- | --- | --- | --- | --- | --- |',
      `| hyperkern (POST /guests/{id}/migrate?wait to its answer) | ${ms(agent.totalMs)} (${each(agentRuns, (r) => r.totalMs)}) | ${ms(agent.qemuDowntimeMs)} (${each(agentRuns, (r) => r.qemuDowntimeMs)}) | ${ms(agent.guestDowntimeMs)} (${each(agentRuns, (r) => r.guestDowntimeMs)}) | downtime ≤ ${TARGET.downtimeMs} ms, total ≤ ${TARGET.totalRatio}× by hand (${ms(reference.totalMs * TARGET.totalRatio)}) | ${met ? 'yes' : '**no**'} (${(agent.totalMs / reference.totalMs).toFixed(2)}×) |`,
      `| QEMU by hand over QMP | ${ms(reference.totalMs)} (${each(handRuns, (r) => r.totalMs)}) | ${ms(reference.qemuDowntimeMs)} (${each(handRuns, (r) => r.qemuDowntimeMs)}) | ${ms(reference.guestDowntimeMs)} (${each(handRuns, (r) => r.guestDowntimeMs)}) | | |`,
      '',
      "Where the time goes (medians of each step's duration; the agents' from the job's own phase times):",
      '',
      '| step | hyperkern | by hand |',
      '| --- | --- | --- |',
      `| the target prepared (blank disk, incoming QEMU, NBD export; the agents: the target's checks and records too) | ${steps((x) => x.prepare).join(' | ')} |`,
      `| the disks mirrored until READY | ${steps((x) => x.disks).join(' | ')} |`,
      `| the RAM copied (ends with the guest paused) | ${steps((x) => x.memory).join(' | ')} |`,
      `| the switch-over (mirrors ended, target resumed; the agents: the commit between them) | ${steps((x) => x.switchOver).join(' | ')} |`,
      `| the rest (the agents: the request's checks, the job, the hand-over and the answer) | ${steps((x) => x.rest).join(' | ')} |`,
      '',
      `The agents' last move, phases as GET /jobs first showed them (polled every 25 ms): ${timelineOf(last)}; its job's message: "${last.message}".`,
    ];
    const section = rows.join('\n');
    process.stdout.write(`${section}\n`);
    const file = path.join(repoRoot, 'bench/RESULTS.md');
    await writeFile(file, withMarkedSection(await readFile(file, 'utf8'), BEGIN, END, section));
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const agent of agents) {
      await agent.stop();
      await killTestQemus(path.join(agent.dataDir, 'plugins', 'qemu'));
      await removeDir(agent.dataDir);
    }
    await removeDir(work);
    await world.dispose();
  }
}

// Bound the whole run: past it everything this bench started is stopped.
const bound = setTimeout(() => {
  process.stderr.write('migration bench: over 30 minutes, giving up\n');
  process.exit(1);
}, 30 * 60_000);
bound.unref();
await main();
