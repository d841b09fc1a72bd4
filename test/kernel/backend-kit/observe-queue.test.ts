/**
 * The ordered observe queue, with real async work and the kernel's real
 * guest registry on a real SQLite file: reports run one at a time in the
 * order they were queued, whatever each takes, and a failure stops none.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { ObserveQueue, type Guest } from '../../../core/contract/index.js';
import { GuestRegistry } from '../../../core/guests/guest-registry.js';
import { createLogger } from '../../../core/logger.js';
import { freshStateStoreEachTest } from '../../support/fresh-state-store.js';
import { MemoryLogger, sleep } from '../../support/backend-testing.js';

describe('backend kit: ordered observe queue', () => {
  const state = freshStateStoreEachTest();
  let registry: GuestRegistry;
  let guest: Guest;
  beforeEach(async () => {
    registry = new GuestRegistry(state.store, createLogger('silent').log);
    guest = { id: randomUUID(), type: '', image: '', nics: [], disks: [], state: 'running', memory: 128, cpu: 1, vnc: 0, metadata: {} };
    await registry.save(guest);
  });

  it('runs reports one at a time in the order queued, a slow one before a fast one', async () => {
    const queue = new ObserveQueue(registry, new MemoryLogger(), 'test');
    const trace: string[] = [];
    let running = 0;
    const delays = [40, 0, 25, 5, 15, 0, 30, 10];
    delays.forEach((delay, i) =>
      queue.enqueue(async () => {
        running++;
        trace.push(`start ${i}${running > 1 ? ' (overlapping)' : ''}`);
        await sleep(delay);
        trace.push(`end ${i}`);
        running--;
      }),
    );
    await queue.drained();
    expect(trace).to.deep.equal(delays.flatMap((_, i) => [`start ${i}`, `end ${i}`]));
  });

  it('keeps read-then-write reports from losing each other on the real registry (unqueued, they do)', async () => {
    const bump = async () => {
      const seen = Number((await registry.get(guest.id))!.metadata['test.count'] ?? 0);
      await sleep(Math.random() * 10); // e.g. asking the hypervisor what it meant
      await registry.observe(guest.id, { metadata: { 'test.count': String(seen + 1) } }, 'count');
    };
    await Promise.all(Array.from({ length: 10 }, bump));
    const unqueued = Number(registry.find(guest.id)!.metadata['test.count']);
    expect(unqueued, 'the control: concurrent reads see the same value').to.be.lessThan(10);

    await registry.observe(guest.id, { metadata: { 'test.count': '0' } }, 'reset');
    const queue = new ObserveQueue(registry, new MemoryLogger(), 'test');
    for (let i = 0; i < 10; i++) queue.enqueue(bump);
    await queue.drained();
    expect(registry.find(guest.id)!.metadata['test.count']).to.equal('10');
  });

  it('records observed changes in the order reported: the last one stands', async () => {
    const queue = new ObserveQueue(registry, new MemoryLogger(), 'test');
    for (const state of ['suspended', 'running', 'suspended', 'running', 'off'] as const) queue.observe(guest.id, { state }, `reported ${state}`);
    await queue.drained();
    expect(registry.find(guest.id)!.state).to.equal('off');
  });

  it('logs a failed report, naming the hypervisor, and runs the next; drained waits for reports queued meanwhile', async () => {
    const log = new MemoryLogger();
    const queue = new ObserveQueue(registry, log, 'QEMU');
    queue.enqueue(async () => {
      await sleep(5);
      throw new Error('SQLITE_FULL: database or disk is full');
    }, { guest: guest.id });
    queue.enqueue(async () => {
      await sleep(5);
      queue.observe(guest.id, { state: 'crashed' }, 'queued by a report');
    });
    await queue.drained();
    expect(registry.find(guest.id)!.state).to.equal('crashed');
    const errors = log.lines.filter((l) => l.level === 'error');
    expect(errors).to.have.length(1);
    expect(errors[0].msg).to.equal('could not record a state change QEMU reported');
    expect(errors[0].obj).to.deep.include({ guest: guest.id, err: 'SQLITE_FULL: database or disk is full' });
  });
});
