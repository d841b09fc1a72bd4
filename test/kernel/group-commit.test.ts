/**
 * Changes arriving during a commit go out together; a key's value reaches
 * its owner's memory only after its commit succeeded; a failed commit
 * applies nothing; a change that refuses itself is dropped alone.
 */
import { expect } from 'chai';
import { GroupCommit, type Commit, type KeyChange } from '../../core/state/group-commit.js';

/** An owner's memory: one map, changed only through `apply`. */
function memory() {
  const values = new Map<string, number>();
  const change = (key: string, next: (current: number | undefined) => number | undefined): KeyChange<number> => ({
    key,
    current: () => values.get(key),
    next,
    apply: (value) => (value === undefined ? values.delete(key) : values.set(key, value)),
  });
  return { values, change };
}

describe('GroupCommit', () => {
  it('commits a lone change at once, then everything that queued meanwhile as one batch', async () => {
    const batches: Commit[] = [];
    const group = new GroupCommit(async (batch) => {
      batches.push(batch);
      await new Promise((r) => setTimeout(r, 10));
    });
    const { values, change } = memory();
    values.set('c', 3);
    await Promise.all([
      group.write([change('a', () => 1)]),
      group.write([change('b', () => 2)]),
      group.write([change('c', () => undefined)]),
      group.write([change('d', () => 4)]),
    ]);
    expect(batches).to.deep.equal([
      { upserts: [['a', 1]], deletes: [], events: [] },
      { upserts: [['b', 2], ['d', 4]], deletes: ['c'], events: [] },
    ]);
    expect([...values]).to.deep.equal([['a', 1], ['b', 2], ['d', 4]]);
  });

  it('makes a value visible only once its commit has succeeded', async () => {
    let release!: () => void;
    const group = new GroupCommit(() => new Promise<void>((r) => (release = r)));
    const { values, change } = memory();
    const written = group.write([change('a', () => 1)]);
    await new Promise((r) => setImmediate(r));
    expect(values.has('a'), 'not visible while the commit is in flight').to.equal(false);
    release();
    await written;
    expect(values.get('a')).to.equal(1);
  });

  it('applies mutations of one key in order onto the committed value, and writes the key once per batch', async () => {
    const batches: Commit[] = [];
    const group = new GroupCommit(async (batch) => {
      batches.push(batch);
      await new Promise((r) => setTimeout(r, 5));
    });
    const { values, change } = memory();
    const add = (n: number) => group.write([change('k', (current) => (current ?? 0) + n)]);
    await Promise.all([add(1), add(10), add(100), add(1000)]);
    expect(values.get('k')).to.equal(1111);
    expect(batches).to.deep.equal([
      { upserts: [['k', 1]], deletes: [], events: [] },
      { upserts: [['k', 1111]], deletes: [], events: [] },
    ]);
  });

  it('bounds a batch by maxKeys', async () => {
    const sizes: number[] = [];
    const group = new GroupCommit(async (batch) => {
      sizes.push(batch.upserts.length);
      await new Promise((r) => setTimeout(r, 1));
    }, 3);
    const { change } = memory();
    await Promise.all(Array.from({ length: 8 }, (_, i) => group.write([change(`k${i}`, () => i)])));
    expect(sizes).to.deep.equal([1, 3, 3, 1]);
  });

  it('rejects exactly the changes of a failed batch, applies none of them, and goes on with the next', async () => {
    let calls = 0;
    const group = new GroupCommit(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      if (calls === 2) throw new Error('SQLITE_FULL');
    });
    const { values, change } = memory();
    const outcomes = await Promise.allSettled([
      group.write([change('a', () => 1)]),
      group.write([change('b', () => 2), change('c', () => 3)]),
      group.write([change('a', (current) => (current ?? 0) + 1)]),
    ]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'rejected']);
    expect([...values], 'nothing of the failed batch is visible').to.deep.equal([['a', 1]]);
    await group.write([change('a', (current) => (current ?? 0) + 1)]);
    expect(values.get('a'), 'the next change starts from the committed value').to.equal(2);
    expect(calls).to.equal(3);
  });

  it('drops a change whose mutation throws, alone and whole, and commits the rest of its batch', async () => {
    const batches: Commit[] = [];
    const group = new GroupCommit(async (batch) => {
      batches.push(batch);
      await new Promise((r) => setTimeout(r, 5));
    });
    const { values, change } = memory();
    const first = group.write([change('x', () => 0)]);
    const refused = group.write([
      change('a', () => 1),
      change('b', () => {
        throw new Error('refused');
      }),
    ]);
    const kept = group.write([change('c', () => 3)]);
    const outcomes = await Promise.allSettled([first, refused, kept]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(values.has('a'), 'no part of the refused change').to.equal(false);
    expect(batches[1]).to.deep.equal({ upserts: [['c', 3]], deletes: [], events: [] });
  });

  it('commits each change\'s event with it, in arrival order, even when values coalesce', async () => {
    const batches: Commit[] = [];
    const group = new GroupCommit(async (batch) => {
      batches.push(batch);
      await new Promise((r) => setTimeout(r, 5));
    });
    const { change } = memory();
    const withEvent = (n: number): KeyChange<number> => ({
      ...change('k', () => n),
      event: (next, current) => ({ type: 'host.metadata', data: { metadata: { from: String(current), to: String(next) } } }),
    });
    await Promise.all([group.write([withEvent(1)]), group.write([withEvent(2)]), group.write([withEvent(3)], [{ type: 'plugin.health', data: { plugin: 'p', healthy: true } }])]);
    expect(batches[1].upserts).to.deep.equal([['k', 3]]);
    expect(batches.flatMap((b) => b.events.map((e) => JSON.stringify(e.data)))).to.deep.equal([
      '{"metadata":{"from":"undefined","to":"1"}}',
      '{"metadata":{"from":"1","to":"2"}}',
      '{"metadata":{"from":"2","to":"3"}}',
      '{"plugin":"p","healthy":true}',
    ]);
  });

  it('writes nothing when no mutation changes its value', async () => {
    let calls = 0;
    const group = new GroupCommit(async () => {
      calls++;
    });
    const { values, change } = memory();
    values.set('a', 1);
    await group.write([change('a', (current) => current)]);
    expect(calls).to.equal(0);
  });

  it('once closed, commits what it accepted and refuses every later write (the store then closes its connection with no statement running)', async () => {
    let release!: () => void;
    let calls = 0;
    const group = new GroupCommit(() => {
      calls++;
      return new Promise<void>((r) => (release = r));
    });
    const { values, change } = memory();
    const accepted = group.write([change('a', () => 1)]);
    const closed = group.close();
    const late = group.write([change('b', () => 2)]);
    const refusal = await late.then(() => undefined, (error: Error) => error);
    expect(refusal?.message).to.match(/state store is closed/);
    release();
    await accepted;
    await closed;
    expect(values.get('a')).to.equal(1);
    expect(values.has('b')).to.equal(false);
    expect(calls).to.equal(1);
  });
});
