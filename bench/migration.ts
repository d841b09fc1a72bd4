/**
 * Migration benchmark (issue 24): the tiny guest with 256 MiB of RAM and a
 * 1 GiB disk with 100 MiB written, moved live between two real agents on
 * loopback (QEMU under TCG), next to QEMU's own migration of the same guest
 * done by hand over QMP on the same link in the same run: the same command
 * line (read from the agent's QEMU), the same disk content, the same steps
 * the agent takes (a target QEMU with `-incoming defer`, its disk exported
 * over NBD, drive-mirror, migrate with a 300 ms downtime limit, the
 * mirror ended, the target resumed). Total time, downtime as QEMU reports
 * it, and downtime as the guest's console counter shows it: the guest
 * prints its own uptime every 10 ms; guest time stops while the VM is
 * stopped, so the wall time between the last line from the source and the
 * first from the target minus the guest time between them is the pause it
 * lived through (console latency on either side included, 10 ms steps).
 *
 *   npm run build && bash heavy.sh node dist/bench/migration.js   (alone: no other QEMU or benchmark running)
 *
 * Writes its section of bench/RESULTS.md (between the migration bench markers).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { withMarkedSection } from './support/results-file.js';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../test/support/agent.js';
import { openConsole, type ConsoleViewerClient } from '../test/support/console-client.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../test/fixtures/tiny-guest/index.js';
import { freePort } from '../test/support/free-port.js';
import { killTestQemus } from '../test/qemu/kill-test-qemus.js';
import { QemuWorld } from '../test/qemu/world.js';
import { qemuConfig } from '../test/migration/fault-world.js';
import { QmpClient } from '../plugins/qemu/qmp-client.js';

const BEGIN = '<!-- migration bench: begin (written by node dist/bench/migration.js) -->';
const END = '<!-- migration bench: end -->';
const TARGET = { downtimeMs: 300, totalRatio: 1.5 };
const PROMPT = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);
/** The guest's clock every 10 ms, with the host's arrival time of each line kept by the reader. */
const CLOCK_LOOP = 'while true; do read up rest < /proc/uptime; echo "up $up"; sleep 0.01; done &\r';

interface Stamp {
  hostMs: number;
  guestMs: number;
}

/** "up 12.34" lines as they arrive, each with the host's time. */
class ClockReader {
  readonly stamps: Stamp[] = [];
  private text = '';
  feed(chunk: Buffer): void {
    const hostMs = performance.now();
    this.text += chunk.toString('latin1');
    const lines = this.text.split('\n');
    this.text = lines.pop() ?? '';
    for (const line of lines) {
      const m = /up (\d+\.\d+)/.exec(line);
      if (m) this.stamps.push({ hostMs, guestMs: Number(m[1]) * 1000 });
    }
  }
}

/** The pause the guest lived through between its last line on the source and its first on the target. */
function guestDowntime(source: ClockReader, target: ClockReader, after: number): number | undefined {
  const first = target.stamps.find((s) => s.hostMs > after);
  const last = [...source.stamps].reverse().find((s) => s.guestMs <= (first?.guestMs ?? Infinity));
  if (!first || !last) return undefined;
  return first.hostMs - last.hostMs - (first.guestMs - last.guestMs);
}

interface Run {
  totalMs: number;
  qemuDowntimeMs?: number;
  guestDowntimeMs?: number;
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
  viewer.type('dd if=/dev/urandom of=/dev/vda bs=1M count=100 2>/dev/null; sync; echo written-$((1+1))\r');
  await viewer.waitFor(/written-2/, 900_000, mark);
  const clock = new ClockReader();
  viewer.ws.on('message', (data: Buffer) => clock.feed(data));
  viewer.type(CLOCK_LOOP);
  await new Promise((r) => setTimeout(r, 2000));
  return { id, viewer, clock };
}

/** The move through the agents: POST migrate, until its job is Complete. */
async function agentMove(a: RunningAgent, b: RunningAgent, id: string, sourceClock: ClockReader): Promise<Run> {
  const started = performance.now();
  const answer = await a.request('POST', `/guests/${id}/migrate`, { url: b.url });
  if (answer.status !== 202) throw new Error(`migrate answered ${answer.status}: ${answer.text}`);
  const jobId = answer.headers.get('x-guest-job-id')!;
  // The target's console, as soon as the guest is registered there.
  let targetViewer: ConsoleViewerClient | undefined;
  const targetClock = new ClockReader();
  for (;;) {
    if (!targetViewer && (await b.request('GET', `/guests/${id}`)).status === 200) {
      targetViewer = await openConsole(b.url, id);
      targetViewer.ws.on('message', (data: Buffer) => targetClock.feed(data));
    }
    const job = (await a.request('GET', `/jobs/${jobId}`)).body as { Status: string; Message: string };
    if (job.Status === 'Error') throw new Error(`the move failed: ${job.Message}`);
    if (job.Status === 'Complete') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const totalMs = performance.now() - started;
  if (!targetViewer) {
    targetViewer = await openConsole(b.url, id);
    targetViewer.ws.on('message', (data: Buffer) => targetClock.feed(data));
  }
  await new Promise((r) => setTimeout(r, 1500));
  await targetViewer.close();
  const events = (await a.request('GET', '/metrics')).text;
  const sum = /hyperkern_migration_downtime_seconds_sum ([\d.e-]+)/.exec(events);
  return { totalMs, qemuDowntimeMs: sum ? Number(sum[1]) * 1000 : undefined, guestDowntimeMs: guestDowntime(sourceClock, targetClock, started) };
}

/** A QEMU of our own from the agent's command line, paths moved to `dir`; its pid from its pidfile. */
async function launch(args: string[], fromDir: string, dir: string, extra: string[]): Promise<number> {
  const moved = args.map((arg) => arg.split(fromDir).join(dir));
  execFileSync(moved[0], [...moved.slice(1), ...extra], { stdio: 'ignore' });
  return Number((await readFile(path.join(dir, 'qemu.pid'), 'utf8')).trim());
}

/** The guest's console socket, read into a clock (and typed into). */
function consoleOf(dir: string, clock: ClockReader): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path.join(dir, 'console.sock'), () => resolve(socket));
    socket.on('data', (data: Buffer) => clock.feed(data));
    socket.once('error', reject);
  });
}

async function waitMigration(qmp: QmpClient): Promise<{ downtime?: number }> {
  for (;;) {
    const info = await qmp.execute<{ status?: string; downtime?: number; 'error-desc'?: string }>('query-migrate');
    if (info.status === 'completed') return info;
    if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`migration ${info.status}: ${info['error-desc']}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The same move by hand over QMP: the reference. */
async function byHand(agentArgs: string[], agentRunDir: string, work: string): Promise<Run> {
  const [src, dst] = [path.join(work, 's'), path.join(work, 'd')];
  await mkdir(src, { recursive: true });
  await mkdir(dst, { recursive: true });
  // The same disk content: the agent's guest disk as copied before its move (100 MiB written).
  execFileSync('cp', [path.join(work, 'vda.qcow2'), path.join(src, 'vda.qcow2')]);
  const pids: number[] = [];
  try {
    pids.push(await launch(agentArgs, agentRunDir, src, []));
    const qs = await QmpClient.connect(path.join(src, 'qmp.sock'));
    const sourceClock = new ClockReader();
    const sconsole = await consoleOf(src, sourceClock);
    // The agent's command line starts QEMU paused (-S) and continues it once it is watched.
    await qs.execute('cont');
    const seen = () => sourceClock.stamps.length;
    // Boot, then the same clock loop.
    let text = '';
    sconsole.on('data', (d: Buffer) => (text = (text + d.toString('latin1')).slice(-4096)));
    const deadline = Date.now() + 300_000;
    while (!PROMPT.test(text)) {
      if (Date.now() > deadline) {
        const log = await readFile(path.join(src, 'console.log'), 'utf8').catch(() => '(no console.log)');
        const stderr = await readFile(path.join(src, 'qemu.stderr.log'), 'utf8').catch(() => '(no stderr log)');
        throw new Error(`the reference guest did not reach its prompt; console: ${JSON.stringify(text.slice(-300))}; console.log: ${JSON.stringify(log.slice(-500))}; stderr: ${stderr.slice(-500)}; args: ${agentArgs.join(' ')}`);
      }
      sconsole.write('\r');
      await new Promise((r) => setTimeout(r, 1000));
    }
    sconsole.write(CLOCK_LOOP);
    while (seen() < 100) await new Promise((r) => setTimeout(r, 100));

    const started = performance.now();
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dst, 'vda.qcow2'), '1G']);
    pids.push(await launch(agentArgs, agentRunDir, dst, ['-incoming', 'defer']));
    const qd = await QmpClient.connect(path.join(dst, 'qmp.sock'));
    const targetClock = new ClockReader();
    const dconsole = await consoleOf(dst, targetClock);
    const [nbdPort, memoryPort] = [await freePort(), await freePort()];
    await qd.execute('nbd-server-start', { addr: { type: 'inet', data: { host: '127.0.0.1', port: String(nbdPort) } } });
    const drive = (await qd.execute<Array<{ device: string }>>('query-block')).map((b) => b.device).find((d) => d.includes('vda'))!;
    await qd.execute('nbd-server-add', { device: drive, writable: true });
    await qd.execute('migrate-incoming', { uri: `tcp:127.0.0.1:${memoryPort}` });
    await qs.execute('drive-mirror', { 'job-id': 'm', device: drive, target: `nbd://127.0.0.1:${nbdPort}/${drive}`, format: 'raw', sync: 'full', mode: 'existing' });
    for (;;) {
      const jobs = await qs.execute<Array<{ ready: boolean }>>('query-block-jobs');
      if (jobs[0]?.ready) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await qs.execute('migrate-set-parameters', { 'downtime-limit': 300, 'max-bandwidth': 10 * 1024 * 1024 * 1024 });
    await qs.execute('migrate', { uri: `tcp:127.0.0.1:${memoryPort}` });
    const info = await waitMigration(qs);
    await qs.execute('block-job-cancel', { device: 'm' });
    await qd.execute('nbd-server-stop');
    await qd.execute('cont');
    const totalMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, 1500));
    qs.close();
    qd.close();
    sconsole.destroy();
    dconsole.destroy();
    return { totalMs, qemuDowntimeMs: info.downtime, guestDowntimeMs: guestDowntime(sourceClock, targetClock, started) };
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${Math.round(v)} ms`);

async function main(): Promise<void> {
  const world = await QemuWorld.create();
  const env = { HYPERKERN_QEMU_ACCEL: 'tcg', HYPERKERN_LOG_LEVEL: 'info' };
  const agents: RunningAgent[] = [];
  const work = await makeTempDir('hk-mig-bench-');
  try {
    agents.push(await startAgent({ config: qemuConfig(world.imagesDir), env }), await startAgent({ config: qemuConfig(world.imagesDir), env }));
    const [a, b] = agents;
    const { id, viewer, clock } = await prepareGuest(a, world);
    const runDir = path.join(a.dataDir, 'plugins', 'qemu', id);
    const pid = Number((await readFile(path.join(runDir, 'qemu.pid'), 'utf8')).trim());
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    execFileSync('qemu-img', ['convert', '-U', '-O', 'qcow2', path.join(runDir, 'vda.qcow2'), path.join(work, 'vda.qcow2')]);
    const agent = await agentMove(a, b, id, clock);
    await viewer.close();
    process.stdout.write(`agents: total ${ms(agent.totalMs)}, downtime ${ms(agent.qemuDowntimeMs)} (QEMU), ${ms(agent.guestDowntimeMs)} (guest)\n`);
    // The guest is on B now: its QEMU on A is gone, the reference runs alone.
    await b.request('DELETE', `/guests/${id}?wait=120`, 'null');
    const reference = await byHand(args, runDir, work);
    const rows = [
      '## Live migration (issue 24)',
      '',
      `Tiny guest, 256 MiB RAM, 1 GiB disk with 100 MiB written (random), QEMU under TCG, two agents on loopback; run ${new Date().toISOString().slice(0, 16)}Z on a shared 2-core machine. ` +
        "QEMU by hand: the same command line and disk content, the same steps over QMP (target with -incoming defer, NBD export, drive-mirror, migrate with downtime-limit 300 ms, mirror ended, cont). " +
        "Guest's view: wall time between the guest's last clock line from the source and its first from the target, minus the guest time between them (10 ms steps).",
      '',
      '| move | total | downtime (QEMU) | downtime (guest\'s counter) | target | met |',
      '| --- | --- | --- | --- | --- | --- |',
      `| hyperkern (POST /guests/{id}/migrate to job Complete) | ${ms(agent.totalMs)} | ${ms(agent.qemuDowntimeMs)} | ${ms(agent.guestDowntimeMs)} | downtime ≤ ${TARGET.downtimeMs} ms, total ≤ ${TARGET.totalRatio}× by hand (${ms(reference.totalMs * TARGET.totalRatio)}) | ${(agent.qemuDowntimeMs ?? Infinity) <= TARGET.downtimeMs && agent.totalMs <= reference.totalMs * TARGET.totalRatio ? 'yes' : '**no**'} (${(agent.totalMs / reference.totalMs).toFixed(2)}×) |`,
      `| QEMU by hand over QMP (target launch to cont) | ${ms(reference.totalMs)} | ${ms(reference.qemuDowntimeMs)} | ${ms(reference.guestDowntimeMs)} | | |`,
    ];
    const section = rows.join('\n');
    process.stdout.write(`${section}\n`);
    const file = path.join(repoRoot, 'bench/RESULTS.md');
    await writeFile(file, withMarkedSection(await readFile(file, 'utf8'), BEGIN, END, section));
  } finally {
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
