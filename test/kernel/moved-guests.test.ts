/**
 * The moved-guest records against a real SQLite state file: written with
 * the guest's removal in one transaction, read back after a reopen (a
 * restarted agent), bounded in number (the oldest go) and in age (an
 * expired record is never answered and is pruned by the next write or load).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { Guest } from '../../core/contract/wire-types.js';
import { GuestRegistry } from '../../core/guests/guest-registry.js';
import { MovedGuests } from '../../core/guests/moved-guests.js';
import { createLogger } from '../../core/logger.js';
import { freshStateStoreEachTest } from '../support/fresh-state-store.js';
import { sqliteQuery } from '../support/sqlite-query.js';
import { STATE_FILE } from '../../core/state/state-store.js';
import path from 'node:path';

const keysIn = async (dir: string, where: string) => (await sqliteQuery<{ key: string }>(path.join(dir, STATE_FILE), `SELECT key FROM keyv WHERE ${where} ORDER BY key`)).map((r) => r.key);

const guest = (): Guest => ({ id: randomUUID(), type: '', image: '', nics: [], disks: [], state: 'running', memory: 256, cpu: 1, vnc: 0, metadata: {} });
const DAY = 86_400_000;

describe('MovedGuests', () => {
  const state = freshStateStoreEachTest();
  const log = createLogger('silent').log;

  it('records a move with the guest removal in one transaction, and finds it again after a reopen', async () => {
    const registry = new GuestRegistry(state.store, log);
    await registry.load();
    const moved = new MovedGuests(state.store);
    await moved.load();
    const g = await registry.save(guest());
    expect(moved.find(g.id), 'a guest that never moved').to.equal(undefined);
    await state.store.change(registry.change(g.id, () => undefined), ...moved.change(g.id, { hostId: 'host-b', url: 'http://127.0.0.1:9' }));
    expect(registry.find(g.id)).to.equal(undefined);
    const record = moved.find(g.id)!;
    expect(record).to.include({ id: g.id, hostId: 'host-b', url: 'http://127.0.0.1:9' });
    expect(Date.parse(record.movedAt)).to.be.closeTo(Date.now(), 5000);
    expect(await keysIn(state.dir, `key LIKE 'moved:%' OR key = 'guest:${g.id}'`), 'the record is on disk, the guest is not').to.deep.equal([`moved:${g.id}`]);

    const reopened = new MovedGuests(await state.reopen());
    await reopened.load();
    expect(reopened.find(g.id)).to.deep.equal(record);
    await reopened.forget(g.id);
    expect(reopened.find(g.id)).to.equal(undefined);
    const again = new MovedGuests(await state.reopen());
    await again.load();
    expect(again.size, 'forgotten for good').to.equal(0);
  });

  it('keeps at most `keep` records, dropping the oldest, and a guest moved again keeps one record', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const moved = new MovedGuests(state.store, { keep: 3, now: () => now });
    await moved.load();
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids.slice(0, 3)) {
      now += 1000;
      await moved.record(id, { url: 'http://127.0.0.1:1' });
    }
    // The first one moves again: it becomes the newest, still one record.
    now += 1000;
    await moved.record(ids[0], { url: 'http://127.0.0.1:2' });
    expect(moved.size).to.equal(3);
    for (const id of ids.slice(3)) {
      now += 1000;
      await moved.record(id, { url: 'http://127.0.0.1:3' });
    }
    expect(moved.size).to.equal(3);
    expect([ids[1], ids[2]].map((id) => moved.find(id)), 'the two oldest went').to.deep.equal([undefined, undefined]);
    expect(moved.find(ids[0])?.url).to.equal('http://127.0.0.1:2');
    expect(await keysIn(state.dir, "key LIKE 'moved:%'")).to.deep.equal([ids[0], ids[3], ids[4]].map((id) => `moved:${id}`).sort());
  });

  it('never answers a record older than maxAgeDays, and prunes it at the next load', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const moved = new MovedGuests(state.store, { maxAgeDays: 2, now: () => now });
    await moved.load();
    const [old, recent] = [randomUUID(), randomUUID()];
    await moved.record(old, { url: 'http://127.0.0.1:1' });
    now += DAY * 1.5;
    await moved.record(recent, { url: 'http://127.0.0.1:1' });
    now += DAY;
    expect(moved.find(old), 'older than two days').to.equal(undefined);
    expect(moved.find(recent)).to.not.equal(undefined);
    const reloaded = new MovedGuests(state.store, { maxAgeDays: 2, now: () => now });
    await reloaded.load();
    expect(reloaded.size).to.equal(1);
    expect(await keysIn(state.dir, "key LIKE 'moved:%'")).to.deep.equal([`moved:${recent}`]);
  });
});
