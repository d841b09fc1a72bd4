/**
 * The job log against a real SQLite state file: ended jobs are held as
 * their stored text and read back on demand, queued and running ones as
 * objects; what it answers is what was stored, after a reload too, with
 * strings Keyv stores escaped (a leading ':') and the history bound.
 */
import { expect } from 'chai';
import { JobLog, ZERO_TIME, type StoredJob } from '../../core/jobs/job-log.js';
import { freshStateStoreEachTest } from '../support/fresh-state-store.js';

function stored(seq: number, id: string, guest: string, Status: StoredJob['job']['Status'], Message = '', args: Record<string, unknown> = {}): StoredJob {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString();
  return { seq, job: { ID: id, GuestID: guest, Action: 'start', QueuedAt: at, StartedAt: Status === 'Queued' ? ZERO_TIME : at, UpdatedAt: at, Status, Message }, args };
}

describe('JobLog', () => {
  const state = freshStateStoreEachTest();

  it('loads ended and live jobs in seq order and answers each as stored, escaped strings included', async () => {
    // Keys in another order than seq, so the order comes from seq.
    const rows = [
      stored(3, 'c-job', 'g1', 'Error', ':colon message', { note: '::two', n: 1 }),
      stored(1, 'z-job', 'g1', 'Complete'),
      stored(2, 'a-job', 'g2', 'Running'),
      stored(4, 'b-job', ':g3', 'Queued', '', { k: ':v' }),
    ];
    for (const row of rows) await state.store.put(`job:${row.job.ID}`, row);
    const log = new JobLog(state.store, 100);
    await log.load();
    expect(log.size).to.equal(4);
    expect(log.list(10).map((j) => j.ID)).to.deep.equal(['b-job', 'c-job', 'a-job', 'z-job']);
    expect(log.list(2).map((j) => j.ID)).to.deep.equal(['b-job', 'c-job']);
    for (const row of rows) {
      expect(log.get(row.job.ID)).to.deep.equal(row.job);
      expect(log.argsOf(row.job.ID)).to.deep.equal(row.args);
    }
    expect(log.forGuest('g1', 10).map((j) => j.ID)).to.deep.equal(['c-job', 'z-job']);
    expect(log.forGuest(':g3', 10).map((j) => j.ID)).to.deep.equal(['b-job']);
    expect(log.withStatus('Queued').map((e) => e.job.ID)).to.deep.equal(['b-job']);
    expect(log.withStatus('Running').map((e) => e.job.ID)).to.deep.equal(['a-job']);
    expect(log.withStatus('Error')).to.deep.equal([{ job: rows[0].job, args: rows[0].args }]);
  });

  it('holds a job that ends as it was stored, and answers it the same after a reload', async () => {
    const log = new JobLog(state.store, 100);
    await log.load();
    const job = await log.create('g1', 'start', { why: ':because' });
    const ended = await log.update(job.ID, { Status: 'Error', Message: ':failed' });
    expect(log.get(job.ID)).to.deep.equal(ended);
    expect(log.argsOf(job.ID)).to.deep.equal({ why: ':because' });
    expect((await log.waitFor(job.ID, 10))?.job).to.deep.equal(ended);
    const reloaded = new JobLog(state.store, 100);
    await reloaded.load();
    expect(reloaded.get(job.ID)).to.deep.equal(ended);
    expect(reloaded.argsOf(job.ID)).to.deep.equal({ why: ':because' });
    expect(reloaded.list(10)).to.deep.equal(log.list(10));
  });

  it('prunes the oldest ended jobs beyond the bound, in memory and in the state file, never a live one', async () => {
    const log = new JobLog(state.store, 2);
    await log.load();
    const first = await log.create('g1', 'start', {});
    const second = await log.create('g1', 'start', {});
    await log.update(second.ID, { Status: 'Complete' });
    const third = await log.create('g2', 'start', {});
    expect(log.list(10).map((j) => j.ID), 'the ended one goes; the queued first stays').to.deep.equal([third.ID, first.ID]);
    expect(log.forGuest('g1', 10).map((j) => j.ID)).to.deep.equal([first.ID]);
    await state.reopen();
    const reloaded = new JobLog(state.store, 10);
    await reloaded.load();
    expect(reloaded.list(10).map((j) => j.ID)).to.deep.equal([third.ID, first.ID]);
  });
});
