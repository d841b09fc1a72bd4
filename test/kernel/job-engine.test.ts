/**
 * The job engine with a kind of job it has never seen: an executor
 * registered the way the lifecycle, snapshot and image executors are, on a
 * queue key of its own, gets queueing, one global limit, Running/Complete/
 * Error, positions, cancel (queued and running), what its kind lands with
 * a failure, telemetry, shutdown and recovery after a restart, against a
 * real SQLite state store.
 */
import { expect } from 'chai';
import pino from 'pino';
import { GuestRegistry } from '../../core/guests/guest-registry.js';
import { JobEngine, type JobExecutor, type JobOutcome, type JobRun } from '../../core/jobs/job-engine.js';
import { JobLog } from '../../core/jobs/job-log.js';
import { logLineFormat } from '../../core/logger.js';
import type { Guest } from '../../core/contract/wire-types.js';
import { freshStateStoreEachTest } from '../support/fresh-state-store.js';
import type { StateStore } from '../../core/state/state-store.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A toy kind: "session" jobs on a host queue per `session` arg; each waits until released or cancelled. */
class SessionJobs implements JobExecutor {
  readonly kind = 'session';
  readonly started: string[] = [];
  readonly failures: Array<{ job: string; reason: string; ran: boolean }> = [];
  private readonly releases = new Map<string, () => void>();

  constructor(private readonly registry: GuestRegistry) {}

  handles(action: string): boolean {
    return action === 'openSession';
  }

  queueOf(_job: unknown, args: Record<string, unknown>): string {
    return `session:${String(args.session)}`;
  }

  async run({ job, cancel }: JobRun) {
    this.started.push(job.ID);
    await new Promise<void>((resolve, reject) => {
      this.releases.set(job.ID, resolve);
      cancel.addEventListener('abort', () => reject(cancel.reason), { once: true });
    });
    // What lands with the Complete: a guest change in the same commit.
    return { message: `session ${job.ID} closed`, changes: [this.registry.change('g1', (g) => g && { ...g, metadata: { ...g.metadata, session: 'closed' } })] };
  }

  failed(job: { ID: string }, _args: Record<string, unknown>, reason: string, ran: boolean) {
    this.failures.push({ job: job.ID, reason, ran });
    return [];
  }

  release(jobId: string): void {
    this.releases.get(jobId)?.();
  }
}

const GUEST: Guest = { id: 'g1', type: '', image: '', nics: [], disks: [], state: 'off', memory: 128, cpu: 1, vnc: 0, metadata: {} };

describe('JobEngine', () => {
  const state = freshStateStoreEachTest();
  const log = pino(logLineFormat('silent'));

  async function boot(store: StateStore, concurrency = 1) {
    const registry = new GuestRegistry(store, log);
    const jobs = new JobLog(store, 100);
    await Promise.all([registry.load(), jobs.load()]);
    if (!registry.find('g1')) await registry.save(GUEST);
    const engine = new JobEngine(store, registry, jobs, log, concurrency);
    const sessions = new SessionJobs(registry);
    engine.register(sessions);
    const telemetry: Array<{ action: string; outcome: JobOutcome }> = [];
    engine.telemetry = { stage: () => undefined, job: (action, outcome) => void telemetry.push({ action, outcome }) };
    return { registry, jobs, engine, sessions, telemetry };
  }

  it('runs a new kind of job on its own queues under the one limit, with positions, cancel and what its kind lands', async () => {
    const { registry, jobs, engine, sessions, telemetry } = await boot(state.store);
    expect(() => engine.checkAccepting(), 'nothing is accepted before recovery').to.throw(/requeueing the jobs of its last run/);
    await engine.recover();
    const a = await engine.submit('', 'openSession', { session: 'a' });
    const b = await engine.submit('', 'openSession', { session: 'b' });
    const a2 = await engine.submit('', 'openSession', { session: 'a' });
    await tick(20);
    expect(jobs.get(a.ID)!.Status).to.equal('Running');
    expect(engine.withProgress(jobs.get(b.ID)!).QueuePosition, 'waiting for the one global slot, first on its queue').to.equal(1);
    expect(engine.withProgress(jobs.get(a2.ID)!).QueuePosition, 'next on session a, behind the running job').to.equal(1);
    expect(engine.stats).to.include({ queued: 2, running: 1 });

    const cancelled = await engine.cancel(b.ID);
    expect(cancelled).to.include({ Status: 'Error', Message: 'cancelled' });
    expect(sessions.failures).to.deep.equal([{ job: b.ID, reason: 'cancelled', ran: false }]);

    sessions.release(a.ID);
    await tick(50);
    expect(jobs.get(a.ID)).to.include({ Status: 'Complete', Message: `session ${a.ID} closed` });
    expect(registry.find('g1')!.metadata.session, 'the change landed with the Complete').to.equal('closed');
    expect(jobs.get(a2.ID)!.Status, 'the next job of session a runs').to.equal('Running');

    await engine.cancel(a2.ID);
    await tick(50);
    expect(jobs.get(a2.ID)).to.include({ Status: 'Error', Message: 'cancelled' });
    expect(sessions.failures[1]).to.deep.equal({ job: a2.ID, reason: 'cancelled', ran: true });
    expect(telemetry).to.deep.equal([
      { action: 'openSession', outcome: 'complete' },
      { action: 'openSession', outcome: 'cancelled' },
    ]);
    expect(engine.stats).to.include({ queued: 0, running: 0 });
    await expectRejected(engine.cancel(a2.ID), /only a queued or running job can be cancelled/);
  });

  it('at the next start, ends what was running as interrupted (through its kind) and runs what was queued, in order', async () => {
    const first = await boot(state.store);
    await first.engine.recover();
    const running = await first.engine.submit('', 'openSession', { session: 'x' });
    const queued = await first.engine.submit('', 'openSession', { session: 'y' });
    await tick(20);
    expect(first.jobs.get(running.ID)!.Status).to.equal('Running');
    // The agent stops with the job still running: the grace ends, its stage is aborted... but this kind ignores the shutdown signal.
    await first.engine.shutdown(10);
    expect(() => first.engine.checkAccepting()).to.throw(/shutting down/);

    const second = await boot(await state.reopen());
    expect(second.jobs.get(running.ID)!.Status, 'still Running in the store').to.equal('Running');
    expect(second.engine.stats, 'the counts are the log\'s, before recovery too').to.include({ queued: 1, running: 1 });
    expect(await second.engine.recover()).to.deep.equal({ resumed: 1, interrupted: 1 });
    expect(second.jobs.get(running.ID)).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
    expect(second.sessions.failures).to.deep.equal([{ job: running.ID, reason: 'interrupted by agent restart', ran: true }]);
    await tick(20);
    expect(second.jobs.get(queued.ID)!.Status).to.equal('Running');
    second.sessions.release(queued.ID);
    await tick(50);
    expect(second.jobs.get(queued.ID)!.Status).to.equal('Complete');
  });
});

async function expectRejected(promise: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail('expected a rejection');
}
