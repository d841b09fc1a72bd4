/**
 * Faults during a live move of the tiny guest between two real agents
 * (QEMU under TCG, two data dirs and loopback ports): the target agent
 * killed (-9) during the disk copy, during the RAM copy and just before the
 * switch-over; the source killed during each; the link to the target cut
 * mid-copy; a cancel. After each (and the killed agent's restart) exactly
 * one host runs the guest, its counter going on, and the other has nothing
 * of it: no QEMU, no run dir with its disks, no registry entry, no
 * migration record. Every fault here happens before the target commits,
 * so the source keeps the guest; one guest serves every case (it ends each
 * on the source), so the suite boots once. Copies are slowed with the
 * move's `bandwidth` so a phase lasts long enough to be hit.
 *
 * "Just before the switch-over": the agent is frozen (SIGSTOP) while QEMU
 * finishes the copy on its own, then killed: for the target once the
 * source waits for its commit (phase `switching`), for the source once its
 * QEMU paused for the hand-over (its console stops growing).
 */
import { expect } from 'chai';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { openConsole } from '../support/console-client.js';
import { waitFor } from '../support/agent.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { killTestQemus } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { removeDir } from '../support/agent.js';
import { expectOnlyOn, moveEnd, Side, startMove, untilMove } from './fault-world.js';

/** MiB/s: 12 MiB of disk data take ~6 s, the RAM longer. */
const SLOW = 2;

describe('migration faults: kills, a cut link and a cancel leave the guest on exactly one host (QEMU, TCG)', function () {
  this.timeout(900_000);
  let world: QemuWorld;
  let a: Side;
  let b: Side;
  let proxy: TcpProxy | undefined;
  let id = '';

  before(async function () {
    this.timeout(600_000);
    world = await QemuWorld.create();
    [a, b] = await Promise.all([Side.start('the source', world.imagesDir), Side.start('the target', world.imagesDir)]);
    const created = await a.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const viewer = await openConsole(a.url, id);
    try {
      await viewer.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
      await viewer.waitFor(new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`), underLoad(60_000));
      // Disk data for the mirror to copy (an unwritten qcow2 cluster costs it nothing).
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
    await proxy?.close();
    for (const side of [a, b]) {
      if (!side) continue;
      await side.kill9().catch(() => undefined);
      await killTestQemus(path.join(side.dataDir, 'plugins', 'qemu'));
      await removeDir(side.dataDir);
    }
    await world?.dispose();
  });

  const copying = (phase: string) => (m: { phase: string; bytesSent: number }) => m.phase === phase && m.bytesSent > 0;

  it('the target killed during the disk copy', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: SLOW });
    await untilMove(a, job, copying('disks'), 'the disk copy under way');
    await b.kill9();
    await b.restart();
    expect((await moveEnd(a, job)).Status).to.equal('Error');
    await expectOnlyOn(a, b, id, 'target killed during the disk copy');
  });

  it('the target killed during the RAM copy', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: SLOW });
    await untilMove(a, job, copying('memory'), 'the RAM copy under way');
    await b.kill9();
    await b.restart();
    expect((await moveEnd(a, job)).Status).to.equal('Error');
    await expectOnlyOn(a, b, id, 'target killed during the RAM copy');
  });

  it('the target killed just before the switch-over (the copy done, its commit not made)', async () => {
    const job = await startMove(a, id, { url: b.url });
    await untilMove(a, job, (m) => m.phase === 'disks', 'the disk copy started');
    b.freeze();
    // QEMU copies on without the target agent; the source then waits for the commit.
    await untilMove(a, job, (m) => m.phase === 'switching', 'the source asking for the commit');
    await b.kill9();
    await b.restart();
    const end = await moveEnd(a, job);
    expect(end.Status).to.equal('Error');
    expect(end.Message).to.match(/did not take the guest/);
    await expectOnlyOn(a, b, id, 'target killed before the switch-over');
  });

  it('the source killed during the disk copy', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: SLOW });
    await untilMove(a, job, copying('disks'), 'the disk copy under way');
    await a.kill9();
    await a.restart();
    await expectOnlyOn(a, b, id, 'source killed during the disk copy');
  });

  it('the source killed during the RAM copy', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: SLOW });
    await untilMove(a, job, copying('memory'), 'the RAM copy under way');
    await a.kill9();
    await a.restart();
    await expectOnlyOn(a, b, id, 'source killed during the RAM copy');
  });

  it('the source killed just before the switch-over (its QEMU paused for the hand-over, the commit not asked)', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: 8 });
    await untilMove(a, job, copying('memory'), 'the RAM copy under way');
    a.freeze();
    // QEMU finishes the RAM copy by itself and pauses the guest: its console stops growing.
    const log = path.join(a.runDir(id), 'console.log');
    let size = -1;
    let still = 0;
    await waitFor(
      async () => {
        const now = (await stat(log)).size;
        still = now === size ? still + 1 : 0;
        size = now;
        return still >= 6;
      },
      underLoad(180_000),
      "the source's guest paused for the hand-over (console quiet 3 s)",
    ).catch(async (error) => {
      await a.kill9();
      throw error;
    });
    await a.kill9();
    await a.restart();
    await expectOnlyOn(a, b, id, 'source killed before the switch-over');
  });

  it('the link to the target cut mid-copy: the guest waits paused, and stays on the source once the target answers again', async () => {
    proxy = await startTcpProxy(Number(new URL(b.url).port));
    const job = await startMove(a, id, { url: proxy.url, bandwidth: 8 });
    await untilMove(a, job, copying('disks'), 'the disk copy under way');
    await proxy.cut();
    // The copy streams finish; the commit cannot be asked: the source is in doubt and keeps asking.
    await untilMove(a, job, (m) => m.phase === 'switching', 'the source asking for the commit');
    await new Promise((r) => setTimeout(r, 7000));
    expect((await a.request('GET', `/jobs/${job}`)).body.Status, 'the move waits for an answer: neither side gives the guest up').to.equal('Running');
    await proxy.restore();
    const end = await moveEnd(a, job);
    expect(end.Status).to.equal('Error');
    await expectOnlyOn(a, b, id, 'link cut mid-copy');
  });

  it('a cancel during the disk copy', async () => {
    const job = await startMove(a, id, { url: b.url, bandwidth: SLOW });
    await untilMove(a, job, copying('disks'), 'the disk copy under way');
    const cancelled = await a.request('DELETE', `/jobs/${job}?wait=120`);
    expect(cancelled.status, cancelled.text).to.equal(200);
    expect(cancelled.body).to.include({ Status: 'Error', Message: 'cancelled' });
    await expectOnlyOn(a, b, id, 'cancel during the disk copy');
  });
});
