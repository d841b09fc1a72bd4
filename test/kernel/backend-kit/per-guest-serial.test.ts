/** Per-guest serial work with real async timing: one guest's work in order, other guests' alongside. */
import { expect } from 'chai';
import { PerGuestSerial } from '../../../core/contract/index.js';
import { sleep } from '../../support/backend-testing.js';

describe('backend kit: per-guest serial work', () => {
  it("runs one guest's work one at a time in order, other guests' at the same time", async () => {
    const serial = new PerGuestSerial();
    const trace: string[] = [];
    const work = (guest: string, n: number, ms: number) =>
      serial.run(guest, async () => {
        trace.push(`${guest}${n} start`);
        await sleep(ms);
        trace.push(`${guest}${n} end`);
        return `${guest}${n}`;
      });
    const answers = await Promise.all([work('a', 1, 40), work('a', 2, 0), work('b', 1, 10)]);
    expect(answers).to.deep.equal(['a1', 'a2', 'b1']);
    const a = trace.filter((t) => t.startsWith('a'));
    expect(a).to.deep.equal(['a1 start', 'a1 end', 'a2 start', 'a2 end']);
    expect(trace.indexOf('b1 end'), "b ran while a's first work slept").to.be.lessThan(trace.indexOf('a1 end'));
    expect(serial.busyGuests, 'nothing kept once all work ended').to.equal(0);
  });

  it('goes on after a failure, which reaches only its own caller', async () => {
    const serial = new PerGuestSerial();
    const failed = serial.run('a', async () => {
      await sleep(5);
      throw new Error('qemu-img: snapshot not found');
    });
    const next = serial.run('a', async () => 'ran');
    expect(await failed.catch((e: Error) => e.message)).to.equal('qemu-img: snapshot not found');
    expect(await next).to.equal('ran');
  });
});
