/**
 * The migration bench's reference (bench/migration.ts): QEMU's own
 * migration of the same guest done by hand over QMP, the way a person
 * would with QEMU alone: a second guest from the agents' guest's command
 * line and disk, in the same state, moved with the same steps the agents
 * take (a target QEMU with `-incoming defer`, its disk exported over NBD,
 * drive-mirror, migrate, the mirror ended, the target resumed).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { CONSOLE_PROMPT } from '../../test/fixtures/tiny-guest/index.js';
import { freePort } from '../../test/support/free-port.js';
import { QmpClient, type QmpEvent } from '../../plugins/qemu/qmp-client.js';
import { ClockReader, CLOCK_LOOP, guestDowntime } from './guest-clock.js';

export const PROMPT = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);
/** 100 MiB of random data onto the guest's disk, through its page cache (the same on both sides). */
export const WRITE_100_MIB = 'dd if=/dev/urandom of=/dev/vda bs=1M count=100 2>/dev/null; sync; echo written-$((1+1))\r';

/** One move's measurements. */
export interface Run {
  /** When each phase was first seen, ms from the start (the agents' move). */
  phases?: Record<string, number>;
  /** The job's message (what was copied); by hand, what QEMU said of its RAM copy. */
  message?: string;
  totalMs: number;
  /** The RAM sent (bytes), as QEMU counted it. */
  memoryBytes?: number;
  qemuDowntimeMs?: number;
  guestDowntimeMs?: number;
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

/** The first QMP event `accept`s from now on (listening starts at the call: make it before the command). */
function nextEvent(qmp: QmpClient, accept: (event: QmpEvent) => boolean): Promise<QmpEvent> {
  return new Promise((resolve) => {
    const onEvent = (event: QmpEvent) => {
      if (!accept(event)) return;
      qmp.removeListener('event', onEvent);
      resolve(event);
    };
    qmp.on('event', onEvent);
  });
}

/** A QEMU of the reference, driven over QMP, its console read into a clock. */
export interface HandGuest {
  dir: string;
  pid: number;
  qmp: QmpClient;
  socket: net.Socket;
  clock: ClockReader;
}

async function handGuest(agentArgs: string[], agentRunDir: string, dir: string, incoming: boolean): Promise<HandGuest> {
  const pid = await launch(agentArgs, agentRunDir, dir, incoming ? ['-incoming', 'defer'] : []);
  const qmp = await QmpClient.connect(path.join(dir, 'qmp.sock'));
  const clock = new ClockReader();
  const socket = await consoleOf(dir, clock);
  return { dir, pid, qmp, socket, clock };
}

/** The reference guest booted from the agent's guest disk (as copied), with the same clock loop. */
export async function bootReference(agentArgs: string[], agentRunDir: string, work: string, pids: number[]): Promise<HandGuest> {
  const dir = path.join(work, 'hand-0');
  await mkdir(dir, { recursive: true });
  execFileSync('cp', [path.join(work, 'vda.qcow2'), path.join(dir, 'vda.qcow2')]);
  const guest = await handGuest(agentArgs, agentRunDir, dir, false);
  pids.push(guest.pid);
  // The agent's command line starts QEMU paused (-S) and continues it once it is watched.
  await guest.qmp.execute('cont');
  let text = '';
  guest.socket.on('data', (d: Buffer) => (text = (text + d.toString('latin1')).slice(-4096)));
  const deadline = Date.now() + 300_000;
  while (!PROMPT.test(text)) {
    if (Date.now() > deadline) throw new Error(`the reference guest did not reach its prompt; console: ${JSON.stringify(text.slice(-300))}`);
    guest.socket.write('\r');
    await new Promise((r) => setTimeout(r, 1000));
  }
  // The same state as the agents' guest: its RAM holds the same 100 MiB of written data in its page cache
  // (a freshly booted guest's RAM is mostly zero pages, which QEMU sends as a flag each: a cheaper move).
  text = '';
  guest.socket.write(WRITE_100_MIB);
  while (!/written-2/.test(text)) {
    if (Date.now() > deadline + 900_000) throw new Error(`the reference guest did not write its disk; console: ${JSON.stringify(text.slice(-300))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  guest.socket.write(CLOCK_LOOP);
  while (guest.clock.stamps.length < 100) await new Promise((r) => setTimeout(r, 100));
  return guest;
}

/** The same move by hand over QMP, from `from` to a new QEMU in `dir`: the reference. */
export async function handMove(from: HandGuest, agentArgs: string[], agentRunDir: string, dir: string, pids: number[]): Promise<{ run: Run; to: HandGuest }> {
  await mkdir(dir, { recursive: true });
  const started = performance.now();
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'vda.qcow2'), '1G']);
  const to = await handGuest(agentArgs, agentRunDir, dir, true);
  pids.push(to.pid);
  const phases: Record<string, number> = { launched: Math.round(performance.now() - started) };
  const [nbdPort, memoryPort] = [await freePort(), await freePort()];
  await to.qmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host: '127.0.0.1', port: String(nbdPort) } } });
  const drive = (await to.qmp.execute<Array<{ device: string }>>('query-block')).map((b) => b.device).find((d) => d.includes('vda'))!;
  await to.qmp.execute('nbd-server-add', { device: drive, writable: true });
  await to.qmp.execute('migrate-incoming', { uri: `tcp:127.0.0.1:${memoryPort}` });
  phases.exported = Math.round(performance.now() - started);
  // QEMU's events end each wait, as in the agents (no poll's lateness on either side).
  const ready = nextEvent(from.qmp, (e) => e.event === 'BLOCK_JOB_READY' && e.data?.device === 'm');
  await from.qmp.execute('drive-mirror', { 'job-id': 'm', device: drive, target: `nbd://127.0.0.1:${nbdPort}/${drive}`, format: 'raw', sync: 'full', mode: 'existing' });
  await ready;
  phases['disks ready'] = Math.round(performance.now() - started);
  await from.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  await from.qmp.execute('migrate-set-parameters', { 'downtime-limit': 300, 'max-bandwidth': 10 * 1024 * 1024 * 1024 });
  const ended = nextEvent(from.qmp, (e) => e.event === 'MIGRATION' && ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)));
  await from.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${memoryPort}` });
  await ended;
  const info = await from.qmp.execute<{ status?: string; downtime?: number; 'total-time'?: number; 'setup-time'?: number; ram?: { transferred?: number; mbps?: number; duplicate?: number; normal?: number }; 'error-desc'?: string }>('query-migrate');
  if (info.status !== 'completed') throw new Error(`migration ${info.status}: ${info['error-desc']}`);
  phases['memory copied'] = Math.round(performance.now() - started);
  const memoryBytes = info.ram?.transferred;
  const qemuSays = `QEMU: total-time ${info['total-time']} ms, setup ${info['setup-time']} ms, ${Math.round(info.ram?.mbps ?? 0)} Mbit/s, ${info.ram?.normal} pages sent whole, ${info.ram?.duplicate} zero`;
  await from.qmp.execute('block-job-cancel', { device: 'm' });
  await to.qmp.execute('nbd-server-stop');
  await to.qmp.execute('cont');
  const totalMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 1500));
  from.qmp.close();
  from.socket.destroy();
  process.kill(from.pid, 'SIGKILL');
  return { run: { totalMs, phases, memoryBytes, message: qemuSays, qemuDowntimeMs: info.downtime, guestDowntimeMs: guestDowntime(from.clock, to.clock, started) }, to };
}
