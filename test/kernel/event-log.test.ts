/**
 * The durable event log under the state store, on a real SQLite file: each
 * change and its event commit together (or neither does), ids increase in
 * commit order with no hole, retention bounds the table, and follow()
 * joins replay to live with no gap and no duplicate.
 */
import { expect } from 'chai';
import path from 'node:path';
import { StateStore, STATE_FILE } from '../../core/state/state-store.js';
import { draft, type KernelEvent } from '../../core/events/kernel-event.js';
import type { ResetNotice } from '../../core/events/change-feed.js';
import { makeTempDir, removeDir } from '../support/agent.js';
import { sqliteQuery } from '../support/sqlite-query.js';

const metadataEvent = (n: number) => draft('host.metadata', { metadata: { n: String(n) } });

describe('event log', function () {
  this.timeout(30000);
  let dir: string;
  let store: StateStore | undefined;
  beforeEach(async () => {
    dir = await makeTempDir('hyperkern-events-');
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await removeDir(dir);
  });

  it('commits every change with its event, ids contiguous in commit order, even when values coalesce', async () => {
    store = await StateStore.open(dir);
    const published: KernelEvent[] = [];
    store.feed.subscribe((e) => published.push(e));
    // 3 writes of one key in a burst coalesce into fewer row writes, but keep 3 events.
    await Promise.all([
      ...[1, 2, 3].map((n) => store!.put('host:metadata', { n: String(n) }, metadataEvent(n))),
      ...Array.from({ length: 50 }, (_, i) => store!.put(`guest:g${i}`, { i }, draft('guest.deleted', { guestId: `g${i}` }, `g${i}`))),
      store.record(draft('plugin.health', { plugin: 'sim', healthy: false, message: 'down' })),
    ]);
    expect(published.map((e) => e.id)).to.deep.equal(Array.from({ length: 54 }, (_, i) => i + 1));
    const metadataOrder = published.filter((e) => e.type === 'host.metadata').map((e) => (e.data as { metadata: { n: string } }).metadata.n);
    expect(metadataOrder, 'one key keeps its order').to.deep.equal(['1', '2', '3']);
    expect(await store.get('host:metadata')).to.deep.equal({ n: '3' });
    await store.close();
    store = undefined;

    const rows = await sqliteQuery<{ id: number; body: string }>(path.join(dir, STATE_FILE), 'SELECT id, body FROM events ORDER BY id');
    expect(rows.map((r) => JSON.parse(r.body))).to.deep.equal(published);
    store = await StateStore.open(dir);
    expect(store.feed.latestId, 'ids continue after a reopen').to.equal(54);
    await store.put('host:metadata', {}, metadataEvent(4));
    expect(store.feed.latestId).to.equal(55);
  });

  it('writes neither the change nor its event when the transaction fails', async () => {
    store = await StateStore.open(dir);
    await store.put('guest:ok', { ok: true }, draft('guest.deleted', { guestId: 'ok' }, 'ok'));
    // A real SQLite failure inside the transaction, after the row was written.
    await sqliteQuery(path.join(dir, STATE_FILE), "CREATE TRIGGER refuse AFTER INSERT ON events WHEN NEW.guest = 'boom' BEGIN SELECT RAISE(ABORT, 'refused by test'); END", 'read-write');
    let failed: { code?: string; cause?: Error } | undefined;
    await store.put('guest:boom', { boom: true }, draft('guest.deleted', { guestId: 'boom' }, 'boom')).catch((e) => (failed = e));
    expect(failed?.code).to.equal('HK_ERR_STORAGE');
    expect(String(failed?.cause?.message)).to.match(/refused by test/);
    expect(await store.get('guest:boom'), 'the change rolled back with its event').to.equal(undefined);
    expect(store.feed.latestId).to.equal(1);
    await store.put('guest:next', { next: true }, draft('guest.deleted', { guestId: 'next' }, 'next'));
    expect(store.feed.latestId, 'a failed commit uses no id').to.equal(2);
    const rows = await sqliteQuery<{ id: number }>(path.join(dir, STATE_FILE), 'SELECT id FROM events ORDER BY id');
    expect(rows.map((r) => r.id)).to.deep.equal([1, 2]);
  });

  it('keeps `retention` events and resets a follower that asks for pruned ones', async () => {
    store = await StateStore.open(dir, { eventRetention: 100 });
    for (let n = 1; n <= 250; n++) await store.put('host:metadata', { n }, metadataEvent(n));
    expect(await store.eventsRetained()).to.equal(100);
    const resets: ResetNotice[] = [];
    const seen: number[] = [];
    const follower = store.feed.follow(10, { event: (e) => void seen.push(e.id), reset: (r) => void resets.push(r), overflow: () => undefined });
    await new Promise((r) => setTimeout(r, 50));
    await store.put('host:metadata', {}, metadataEvent(251));
    follower.close();
    expect(resets).to.have.length(1);
    expect(resets[0]).to.include({ requested: 10, resumeAfter: 250 });
    expect(seen, 'after the reset, live from the newest').to.deep.equal([251]);

    const kept: number[] = [];
    // 251 events, 100 kept: 152..251.
    const ok = store.feed.follow(160, { event: (e) => void kept.push(e.id), reset: () => kept.push(-1), overflow: () => undefined });
    await new Promise((r) => setTimeout(r, 50));
    ok.close();
    expect(kept).to.deep.equal(Array.from({ length: 91 }, (_, i) => 161 + i));
  });

  it('follow() replays then goes live with no gap and no duplicate while writes keep coming', async () => {
    store = await StateStore.open(dir);
    for (let n = 1; n <= 700; n++) void store.put(`guest:k${n % 37}`, { n }, metadataEvent(n));
    await store.put('host:metadata', {}, metadataEvent(0));
    const seen: number[] = [];
    // A slow consumer during replay: live writes arrive meanwhile.
    const follower = store.feed.follow(5, {
      event: (e) => {
        seen.push(e.id);
        if (e.id % 100 === 0) return new Promise((r) => setTimeout(r, 5));
      },
      reset: () => expect.fail('nothing was pruned'),
      overflow: () => expect.fail('the backlog bound is large'),
    });
    const more = Array.from({ length: 300 }, (_, i) => store!.put(`guest:m${i % 11}`, { i }, metadataEvent(i)));
    await Promise.all(more);
    await new Promise((r) => setTimeout(r, 200));
    follower.close();
    const latest = store.feed.latestId;
    expect(latest).to.equal(1001);
    expect(seen).to.deep.equal(Array.from({ length: latest - 5 }, (_, i) => 6 + i));
  });

  it('a follower whose backlog passes the bound during replay gets overflow', async () => {
    store = await StateStore.open(dir);
    for (let n = 1; n <= 20; n++) await store.put('host:metadata', { n }, metadataEvent(n));
    let overflowed = false;
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    store.feed.follow(0, { event: () => stuck, reset: () => undefined, overflow: () => void (overflowed = true) }, 5);
    for (let n = 0; n < 10; n++) await store.put('host:metadata', { n }, metadataEvent(n));
    expect(overflowed).to.equal(true);
    release();
  });
});
