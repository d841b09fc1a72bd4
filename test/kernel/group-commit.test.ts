/** Writes arriving during a commit go out together; every caller settles with its own statement. */
import { expect } from 'chai';
import { GroupCommit, type Commit } from '../../core/state/group-commit.js';

describe('GroupCommit', () => {
  it('commits a lone write at once, then everything that queued meanwhile as one batch', async () => {
    const batches: Commit[] = [];
    const group = new GroupCommit(async (batch) => {
      batches.push(batch);
      await new Promise((r) => setTimeout(r, 10));
    });
    const writes = [group.write('a', '1'), group.write('b', '2'), group.write('c', undefined), group.write('d', '4')];
    await Promise.all(writes);
    expect(batches).to.deep.equal([
      { upserts: [['a', '1']], deletes: [], events: [] },
      { upserts: [['b', '2'], ['d', '4']], deletes: ['c'], events: [] },
    ]);
  });

  it('bounds a batch by maxRows', async () => {
    const sizes: number[] = [];
    const group = new GroupCommit(async (batch) => {
      sizes.push(batch.upserts.length);
      await new Promise((r) => setTimeout(r, 1));
    }, 3);
    await Promise.all(Array.from({ length: 8 }, (_, i) => group.write(`k${i}`, String(i))));
    expect(sizes).to.deep.equal([1, 3, 3, 1]);
  });

  it('rejects exactly the writes of a failed batch and goes on with the next', async () => {
    let calls = 0;
    const group = new GroupCommit(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      if (calls === 2) throw new Error('SQLITE_FULL');
    });
    const outcomes = await Promise.allSettled([group.write('a', '1'), group.write('b', '2'), group.write('c', '3')]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'rejected']);
    await group.write('d', '4');
    expect(calls).to.equal(3);
  });
});
