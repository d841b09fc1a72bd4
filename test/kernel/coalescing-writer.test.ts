/** Writes of one key never overlap or reorder, bursts coalesce, and every caller learns of its write. */
import { expect } from 'chai';
import { CoalescingWriter } from '../../core/state/coalescing-writer.js';

describe('CoalescingWriter', () => {
  it('writes a burst of updates to one key as the first value then the last, in order', async () => {
    const writes: Array<[string, number | undefined]> = [];
    let inFlight = 0;
    const writer = new CoalescingWriter<number>(async (key, value) => {
      inFlight++;
      expect(inFlight, 'no two writes of a key at once').to.equal(1);
      await new Promise((r) => setTimeout(r, 5));
      writes.push([key, value]);
      inFlight--;
    });
    await Promise.all([1, 2, 3, 4, 5].map((v) => writer.put('k', v)));
    expect(writes).to.deep.equal([
      ['k', 1],
      ['k', 5],
    ]);
  });

  it('writes different keys independently and deletes with undefined', async () => {
    const seen = new Map<string, number | undefined>();
    const writer = new CoalescingWriter<number>(async (key, value) => {
      seen.set(key, value);
    });
    await Promise.all([writer.put('a', 1), writer.put('b', 2), writer.put('a', undefined)]);
    expect(seen.get('b')).to.equal(2);
    expect(seen.has('a') && seen.get('a')).to.equal(undefined);
    expect(writer.pendingKeys).to.equal(0);
  });

  it('rejects every caller whose value was in a failed write, and recovers for the next', async () => {
    let fail = true;
    const writer = new CoalescingWriter<number>(async () => {
      if (fail) throw new Error('disk full');
    });
    const failed = await writer.put('k', 1).then(() => 'ok', (e: Error) => e.message);
    expect(failed).to.equal('disk full');
    fail = false;
    expect(await writer.put('k', 2).then(() => 'ok')).to.equal('ok');
  });
});
