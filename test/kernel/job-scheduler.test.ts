/** The scheduler's two promises: one job per guest at a time, in order; a global bound across guests. */
import { expect } from 'chai';
import { JobScheduler } from '../../core/jobs/job-scheduler.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('JobScheduler', () => {
  it('runs one guest\'s jobs strictly one after another, in FIFO order', async () => {
    const log: string[] = [];
    let concurrentForGuest = 0;
    let maxConcurrentForGuest = 0;
    const scheduler = new JobScheduler(8, async (_guest, job) => {
      concurrentForGuest++;
      maxConcurrentForGuest = Math.max(maxConcurrentForGuest, concurrentForGuest);
      log.push(`start ${job}`);
      await tick(5);
      log.push(`end ${job}`);
      concurrentForGuest--;
    });
    for (const job of ['a', 'b', 'c', 'd']) scheduler.enqueue('g1', job);
    await tick(1);
    await scheduler.idle();
    expect(maxConcurrentForGuest).to.equal(1);
    expect(log).to.deep.equal(['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d', 'end d']);
  });

  it('runs different guests in parallel up to the global limit, never beyond', async () => {
    let running = 0;
    let peak = 0;
    const done: string[] = [];
    const scheduler = new JobScheduler(3, async (guest) => {
      running++;
      peak = Math.max(peak, running);
      await tick(10);
      running--;
      done.push(guest);
    });
    for (let g = 0; g < 10; g++) scheduler.enqueue(`g${g}`, `job${g}`);
    expect(scheduler.runningCount).to.equal(3);
    expect(scheduler.queuedCount).to.equal(7);
    await tick(1);
    await scheduler.idle();
    await tick(1);
    expect(peak).to.equal(3);
    expect(done).to.have.length(10);
  });

  it('keeps going after a job throws, and pause() starts nothing new', async () => {
    const ran: string[] = [];
    const scheduler = new JobScheduler(1, async (_g, job) => {
      ran.push(job);
      if (job === 'bad') throw new Error('boom');
    });
    scheduler.enqueue('g', 'bad');
    scheduler.enqueue('g', 'good');
    await tick(5);
    expect(ran).to.deep.equal(['bad', 'good']);
    scheduler.pause();
    scheduler.enqueue('g', 'later');
    await tick(5);
    expect(ran).to.not.include('later');
    expect(scheduler.queuedCount).to.equal(1);
  });

  it('drains at shutdown: starts nothing new, true once running jobs end within the grace, false when they do not', async () => {
    const ran: string[] = [];
    let release: (() => void) | undefined;
    const scheduler = new JobScheduler(2, async (_g, job) => {
      ran.push(job);
      await tick(20);
    });
    scheduler.enqueue('a', 'quick');
    scheduler.enqueue('a', 'queued');
    expect(await scheduler.drain(5000), 'the running job ends within the grace').to.equal(true);
    expect(ran).to.deep.equal(['quick']);
    expect(scheduler.queuedCount, 'queued jobs stay queued').to.equal(1);

    const stuck = new JobScheduler(1, async (_g, job) => {
      ran.push(job);
      await new Promise<void>((r) => (release = r));
    });
    stuck.enqueue('b', 'stuck');
    const began = Date.now();
    expect(await stuck.drain(50)).to.equal(false);
    expect(Date.now() - began).to.be.at.least(45);
    release!();
    await stuck.idle();
  });
});
