/**
 * Two QEMU agents (real processes, TCG) for the fault tests of moves: each
 * can be killed with -9, frozen (SIGSTOP: its QEMU goes on, the agent does
 * nothing) and restarted on its own data dir and port; and the checks that a
 * move's fault left exactly one running guest, on the expected host, and
 * nothing of it on the other (no QEMU process, no run dir with its disks,
 * no registry entry, no migration record).
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { sqliteQuery } from '../support/sqlite-query.js';
import { STATE_FILE } from '../../core/state/state-store.js';
import { underLoad } from '../support/load-budget.js';


const ENV = { HYPERKERN_QEMU_ACCEL: 'tcg' };

/** An agent that keeps its data dir and port across kills and restarts. */
export class Side {
  private constructor(
    readonly name: string,
    private readonly config: object,
    public agent: RunningAgent,
  ) {}

  /** `qemu`: QEMU plugin options over the test config's. */
  static async start(name: string, imagesDir: string, qemu: Record<string, unknown> = {}): Promise<Side> {
    const config = tcgQemuConfig(imagesDir, qemu);
    return new Side(name, config, await startAgent({ config, env: ENV, startTimeoutMs: 120_000 }));
  }

  get url(): string {
    return this.agent.url;
  }

  get dataDir(): string {
    return this.agent.dataDir;
  }

  request: RunningAgent['request'] = (...args) => this.agent.request(...args);

  async kill9(): Promise<void> {
    process.kill(this.agent.pid, 'SIGCONT');
    await this.agent.kill9();
  }

  /** Frozen: the process holds its sockets and answers nothing. */
  freeze(): void {
    process.kill(this.agent.pid, 'SIGSTOP');
  }

  /** A new process on the same data dir and port (so the other side's records still reach it). */
  async restart(): Promise<void> {
    const listen = new URL(this.agent.url).host;
    this.agent = await startAgent({ config: this.config, env: ENV, dataDir: this.agent.dataDir, args: ['--listen', listen], startTimeoutMs: 120_000 });
  }

  runDir(guestId: string): string {
    return path.join(this.dataDir, 'plugins', 'qemu', guestId);
  }

  /** Pids of QEMU processes of this guest under this agent's data dir. */
  async qemuPids(guestId: string): Promise<number[]> {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.startsWith('qemu-system') || cmdline.includes('/qemu-system')) {
        if (cmdline.includes(this.runDir(guestId))) pids.push(Number(entry));
      }
    }
    return pids;
  }

  async migrationRecords(): Promise<string[]> {
    const rows = await sqliteQuery<{ key: string }>(path.join(this.dataDir, STATE_FILE), "SELECT key FROM keyv WHERE key LIKE 'migration:%'");
    return rows.map((r) => r.key);
  }
}

/** The counter the guest prints on its console, as the agent's console log has it. */
export async function lastTick(side: Side, guestId: string): Promise<number> {
  const res = await side.request('GET', `/guests/${guestId}/console/log?bytes=4096`);
  if (res.status !== 200) return -1;
  return Math.max(-1, ...[...res.text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
}

/**
 * After a fault: the guest runs on `owner` (its counter goes on: not
 * paused), and `other` has nothing of it; neither keeps a migration record.
 */
export async function expectOnlyOn(owner: Side, other: Side, guestId: string, what: string): Promise<void> {
  const bound = underLoad(150_000);
  await waitFor(async () => (await owner.request('GET', `/guests/${guestId}`)).body?.state === 'running', bound, `${what}: the guest running on ${owner.name}`);
  const before = await lastTick(owner, guestId);
  await waitFor(async () => (await lastTick(owner, guestId)) > before + 2, underLoad(60_000), `${what}: the guest's counter going on on ${owner.name} (it is not paused)`);
  const there = await other.request('GET', `/guests/${guestId}`);
  expect(there.status, `${what}: ${other.name} has no registry entry`).to.equal(404);
  await waitFor(async () => (await other.qemuPids(guestId)).length === 0, bound, `${what}: no QEMU of the guest on ${other.name}`);
  await waitFor(async () => !(await readdir(other.runDir(guestId)).then(() => true, () => false)), bound, `${what}: no run dir (disks) of the guest on ${other.name}`);
  expect(await owner.qemuPids(guestId), `${what}: one QEMU on ${owner.name}`).to.have.length(1);
  for (const side of [owner, other]) {
    await waitFor(async () => (await side.migrationRecords()).length === 0, bound, `${what}: no migration record left on ${side.name}`);
  }
}

/** Starts a move of the guest and returns its job id. */
export async function startMove(from: Side, guestId: string, body: object): Promise<string> {
  const started = await from.request('POST', `/guests/${guestId}/migrate`, body);
  expect(started.status, started.text).to.equal(202);
  return started.headers.get('x-guest-job-id')!;
}

/** Polls the move's job until `reached` says so; fails if the job ends first. */
export async function untilMove(from: Side, jobId: string, reached: (m: { phase: string; bytesSent: number; bytesTotal: number }) => boolean, what: string): Promise<void> {
  await waitFor(
    async () => {
      const job = (await from.request('GET', `/jobs/${jobId}`)).body;
      if (job.Status === 'Complete' || job.Status === 'Error') throw new Error(`the move ended (${job.Status}: ${job.Message}) before ${what}`);
      return job.Migration !== undefined && reached(job.Migration);
    },
    underLoad(180_000),
    what,
  );
}

/** The move's job once it ended. */
export async function moveEnd(from: Side, jobId: string): Promise<{ Status: string; Message: string }> {
  return waitFor(
    async () => {
      const job = (await from.request('GET', `/jobs/${jobId}`)).body;
      return job.Status === 'Complete' || job.Status === 'Error' ? job : undefined;
    },
    underLoad(300_000),
    `job ${jobId} to end`,
  );
}
