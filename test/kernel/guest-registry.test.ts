/**
 * The guest registry against a real SQLite state file: guests held as
 * JSON bytes with only recently used ones parsed; what it answers is what
 * was committed, for guests that left the parsed cache, after a reload
 * (Keyv-escaped ':' strings included), in the order guests were added.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { Guest } from '../../core/contract/wire-types.js';
import { GuestRegistry } from '../../core/guests/guest-registry.js';
import { createLogger } from '../../core/logger.js';
import { freshStateStoreEachTest } from '../support/fresh-state-store.js';

const guest = (i: number, metadata: Record<string, string> = {}): Guest => ({
  id: randomUUID(),
  type: '',
  image: 'debian',
  nics: [{ name: 'net0', network: 'br0', model: 'virtio', mac: '52:54:00:00:00:01', address: '', netmask: '', gateway: '', device: `hk${i}n0`, vlans: [] }],
  disks: [{ bus: 'virtio', device: 'vda', size: 64, volume: '', image: '', source: `sim://${i}/vda` }],
  state: 'off',
  memory: 128 + i,
  cpu: 1,
  vnc: 0,
  metadata,
});

describe('GuestRegistry', () => {
  const log = createLogger('silent');
  const state = freshStateStoreEachTest();

  it('answers every guest as committed, also those that left the parsed cache, and again after a reload', async function () {
    this.timeout(60_000);
    const registry = new GuestRegistry(state.store, log.log);
    await registry.load();
    // More guests than the registry keeps parsed, so the first ones are read back from their bytes;
    // multi-byte characters in half of them, so a view into the list's bytes must count bytes, not characters.
    const saved = await Promise.all(Array.from({ length: 2500 }, (_, i) => registry.save(guest(i, i % 2 ? { colon: `:${i}`, two: '::x' } : { n: String(i), label: 'Gäste € 𝄞' }))));
    // In the order they were added; a reload adds them in the order of their ids (the state file's key order).
    const check = (r: GuestRegistry, reloaded = false) => {
      const order = reloaded ? [...saved].sort((a, b) => (a.id < b.id ? -1 : 1)) : saved;
      expect(r.size).to.equal(saved.length);
      expect(r.all().map((g) => g.id)).to.deep.equal(order.map((g) => g.id));
      for (const g of [saved[0], saved[1], saved[1250], saved[saved.length - 1]]) {
        expect(r.find(g.id)).to.deep.equal(g);
        expect(JSON.parse(r.jsonOf(g.id)!.toString())).to.deep.equal(g);
      }
      expect(JSON.parse(r.listJson().toString())).to.deep.equal(order);
    };
    check(registry);
    // A change to a guest read back from its bytes lands on what was committed.
    const patched = await registry.patchMetadata(saved[1].id, { added: 'yes' });
    expect(patched!.metadata).to.deep.equal({ ...saved[1].metadata, added: 'yes' });
    saved[1] = patched!;
    expect(registry.find(saved[1].id)).to.equal(patched, 'the committed object while it is in use');
    check(registry);
    const reloaded = new GuestRegistry(state.store, log.log);
    await reloaded.load();
    check(reloaded, true);
    await reloaded.remove(saved[0].id);
    saved.shift();
    check(reloaded, true);
  });
});
