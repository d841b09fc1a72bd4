/**
 * Faults of a live move the first fault suite (faults.test.ts) leaves out,
 * between two real agents (QEMU under TCG, loopback), the guest with a NIC
 * on a bridge of the test's own:
 * - the source killed (-9) after the target committed, before it heard so
 *   (the target's answers held by a TCP proxy in front of its API): at its
 *   restart the source asks, finds the guest moved and removes its copy;
 * - the target killed (-9) in the middle of its prepare, once it made its
 *   tap: its restart removes the tap with the rest of the copy;
 * - the link cut mid-copy (during the disk copy, and during the RAM copy):
 *   the target's API and its NBD and migration streams, all through proxies the test controls (the target advertises
 *   its streams at another loopback address, `migrationHost`, where the
 *   proxies listen, on the ports of its `migrationPortMin`..`Max`).
 * After each: exactly one running guest, on the expected host, its counter
 * going on; both agents say which (the other answers 404 naming where it
 * went, or nothing); the other has no QEMU, no run dir, no registry entry,
 * no migration record and no tap of the guest.
 */
import { expect } from 'chai';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tapName } from '../../core/contract/index.js';
import { STATE_FILE } from '../../core/state/state-store.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { openConsole } from '../support/console-client.js';
import { removeDir, waitFor } from '../support/agent.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { sqliteQuery } from '../support/sqlite-query.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { killTestQemus } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { expectOnlyOn, moveEnd, Side, startMove, untilMove } from './fault-world.js';

/** Where the agents tell a source to connect its streams: the proxies' loopback address, not the one QEMU listens on. */
const STREAMS_SEEN_AT = '127.0.0.2';
const PORTS = 4;

const bindable = (port: number, host: string) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });

/** A run of free ports on both loopback addresses. */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = randomInt(30_000, 40_000);
    let ok = true;
    for (let p = first; p < first + PORTS && ok; p++) ok = (await bindable(p, '127.0.0.1')) && (await bindable(p, STREAMS_SEEN_AT));
    if (ok) return first;
  }
  throw new Error('no free port range on loopback');
}

describe('migration faults: the source killed after the commit, a prepare killed after its tap, the streams cut (QEMU, TCG)', function () {
  this.timeout(900_000);
  let world: QemuWorld;
  let a: Side;
  let b: Side;
  let first = 0;
  const proxies: TcpProxy[] = [];
  let streams: TcpProxy[] = [];
  let id = '';

  /** The guest's taps that exist on this host (either side's name for NIC 0). */
  const taps = () => [tapName(id, 0), tapName(id, 0).replace(/n0$/, 'm0')].filter((t) => existsSync(`/sys/class/net/${t}`));
  /** The owner's tap is the one tap of the guest left on the host. */
  const onlyTapOf = async (owner: Side, what: string) => {
    const device = (await owner.request('GET', `/guests/${id}`)).body.nics[0].device as string;
    await waitFor(async () => taps().length === 1, underLoad(60_000), `${what}: one tap of the guest on the host (found ${taps().join(', ')})`);
    expect(taps(), `${what}: the tap left is ${owner.name}'s`).to.deep.equal([device]);
  };
  const apiProxy = async (to: Side) => {
    const proxy = await startTcpProxy(Number(new URL(to.url).port));
    proxies.push(proxy);
    return proxy;
  };

  before(async function () {
    this.timeout(600_000);
    world = await QemuWorld.create({ bridge: true });
    first = await freeRange();
    const qemu = { migrationHost: STREAMS_SEEN_AT, migrationPortMin: first, migrationPortMax: first + PORTS - 1 };
    [a, b] = await Promise.all([Side.start('the source', world.imagesDir, qemu), Side.start('the target', world.imagesDir, qemu)]);
    for (let p = first; p < first + PORTS; p++) streams.push(await startTcpProxy(p, '127.0.0.1', { host: STREAMS_SEEN_AT, port: p }));
    const created = await a.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], nics: [{ name: 'eth0', network: world.bridge!.name }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const viewer = await openConsole(a.url, id);
    try {
      await viewer.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
      await viewer.waitFor(new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`), underLoad(60_000));
      let mark = viewer.received().length;
      viewer.type('dd if=/dev/urandom of=/dev/vda bs=1M count=12 2>/dev/null; sync; echo filled-$((1+1))\r');
      await viewer.waitFor(/filled-2/, underLoad(120_000), mark);
      mark = viewer.received().length;
      viewer.type('i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done &\r');
      await viewer.waitFor(/tick 3\r\n/, underLoad(30_000), mark);
    } finally {
      await viewer.close();
    }
  });

  after(async () => {
    for (const proxy of [...proxies, ...streams]) await proxy.close();
    for (const side of [a, b]) {
      if (!side) continue;
      await side.kill9().catch(() => undefined);
      await killTestQemus(path.join(side.dataDir, 'plugins', 'qemu'));
      await removeDir(side.dataDir);
    }
    if (id) for (const tap of taps()) execFileSync('ip', ['link', 'del', 'dev', tap]);
    await world?.dispose();
  });

  it('the source killed after the target committed (its answer held back): the restarted source finds the guest moved and removes its copy', async () => {
    const proxy = await apiProxy(b);
    const job = await startMove(a, id, { url: proxy.url });
    await untilMove(a, job, (m) => m.phase === 'memory', 'the RAM copy started');
    proxy.hold();
    await waitFor(async () => (await b.request('GET', `/guests/${id}`)).status === 200, underLoad(180_000), 'the target committed (the guest in its registry)');
    expect((await a.migrationRecords()).length, 'the source still has its record: it never heard of the commit').to.equal(1);
    await a.kill9();
    // The target's committed record waits for the source's word; meanwhile the guest may move on (here: the source is down).
    const onward = await b.request('POST', `/guests/${id}/migrate`, { url: a.url });
    expect(onward.status, onward.text).to.equal(502);
    expect(onward.body.message).to.match(/cannot reach the target agent/);
    // The link back before the source restarts: it asks the target, first thing, who owns the guest.
    proxy.release();
    await a.restart();
    await waitFor(async () => (await a.request('GET', `/guests/${id}`)).status === 404, underLoad(60_000), 'the restarted source to find the guest moved');
    await expectOnlyOn(b, a, id, 'source killed after the commit');
    const asked = await a.request('GET', `/guests/${id}/metadata`);
    expect(asked.status, 'the source says where the guest went').to.equal(404);
    expect(asked.body.error).to.equal('HK_ERR_GUEST_MOVED');
    expect(asked.headers.get('location')).to.equal(`${proxy.url}/guests/${id}/metadata`);
    await onlyTapOf(b, 'source killed after the commit');
  });

  it('the target killed during its prepare, its tap made: its restart removes the tap with the rest', async () => {
    // The guest is on b now: a is the target, and names its tap the one b does not use.
    const sourceTap = (await b.request('GET', `/guests/${id}`)).body.nics[0].device as string;
    const targetTap = [tapName(id, 0), tapName(id, 0).replace(/n0$/, 'm0')].find((t) => t !== sourceTap)!;
    const job = await startMove(b, id, { url: a.url });
    // Polled tightly: from the tap to the record naming it, the target launches its incoming QEMU (a few hundred ms under TCG).
    const deadline = Date.now() + underLoad(120_000);
    while (!existsSync(`/sys/class/net/${targetTap}`)) {
      if (Date.now() > deadline) throw new Error(`no tap ${targetTap} made by the target`);
      await new Promise((r) => setTimeout(r, 2));
    }
    await a.kill9();
    const records = await sqliteQuery<{ value: string }>(path.join(a.dataDir, STATE_FILE), "SELECT value FROM keyv WHERE key LIKE 'migration:%'");
    expect(records, 'one record on the target').to.have.length(1);
    expect(records[0].value, 'killed mid-prepare (its record names no tap yet)').to.match(/phase\\?":\s*\\?"preparing/);
    await a.restart();
    expect((await moveEnd(b, job)).Status).to.equal('Error');
    await expectOnlyOn(b, a, id, 'target killed during its prepare');
    await onlyTapOf(b, 'target killed during its prepare');
  });

  it("the link cut mid-copy (the target's API and its NBD and migration streams): the move fails saying so, the guest runs on the source, the target drops its copy", async () => {
    const proxy = await apiProxy(a);
    const job = await startMove(b, id, { url: proxy.url, bandwidth: 2 });
    await untilMove(b, job, (m) => m.phase === 'disks' && m.bytesSent > 0, 'the disk copy under way');
    await Promise.all([proxy.cut(), ...streams.map((s) => s.cut())]);
    const end = await moveEnd(b, job);
    expect(end.Status).to.equal('Error');
    expect(end.Message).to.match(/copying the disks failed: .*(target|NBD|I\/O)/);
    await Promise.all([proxy.restore(), ...streams.map((s) => s.restore())]);
    // The target, told nothing (the link was cut when the source undid the move), drops its copy once the source says it has no such move.
    await expectOnlyOn(b, a, id, 'link cut mid-copy');
    await onlyTapOf(b, 'link cut mid-copy');
  });

  it('the link cut during the RAM copy, streams included: the same outcome', async () => {
    const proxy = await apiProxy(a);
    const job = await startMove(b, id, { url: proxy.url, bandwidth: 2 });
    await untilMove(b, job, (m) => m.phase === 'memory' && m.bytesSent > 0, 'the RAM copy under way');
    await Promise.all([proxy.cut(), ...streams.map((s) => s.cut())]);
    const end = await moveEnd(b, job);
    expect(end.Status).to.equal('Error');
    expect(end.Message).to.match(/copying the memory failed: /);
    await Promise.all([proxy.restore(), ...streams.map((s) => s.restore())]);
    await expectOnlyOn(b, a, id, 'link cut during the RAM copy');
    await onlyTapOf(b, 'link cut during the RAM copy');
  });
});
