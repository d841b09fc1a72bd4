/**
 * Moving the tiny guest between two real agents (two data dirs, two
 * loopback ports, QEMU under TCG): live while it prints a counter on its
 * console, which goes on on the target from where it was (no reboot), read
 * through the target's console WebSocket; the disk's content written before
 * is there after; a move back; a cancel leaves it running on the source
 * with nothing on the target; a cold move of a stopped guest; refusals
 * before anything is copied. See docs/migration.md.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { openConsole, type ConsoleViewerClient } from '../support/console-client.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';

const PROMPT_AT_END = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);
const MARKER = `hk-disk-marker-${randomBytes(4).toString('hex')}`;


/** The highest counter value in the text. */
const lastTick = (text: string): number => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

describe('migration: moving the tiny guest between two agents (QEMU, TCG)', function () {
  this.timeout(900_000);
  let world: QemuWorld;
  let a: RunningAgent | undefined;
  let b: RunningAgent | undefined;
  const viewers: ConsoleViewerClient[] = [];
  let bridge: string | undefined;

  before(async function () {
    this.timeout(600_000);
    world = await QemuWorld.create();
    const env = { HYPERKERN_QEMU_ACCEL: 'tcg' };
    [a, b] = await Promise.all([startAgent({ config: tcgQemuConfig(world.imagesDir), env }), startAgent({ config: tcgQemuConfig(world.imagesDir), env })]);
  });
  after(async () => {
    await Promise.all(viewers.map((v) => v.close()));
    await Promise.all([disposeQemuTestAgent(a), disposeQemuTestAgent(b)]);
    if (bridge) execFileSync('sh', ['-c', `ip link del ${bridge} 2>/dev/null || true`]);
    await world?.dispose();
  });

  const view = async (agent: RunningAgent, id: string) => {
    const viewer = await openConsole(agent.url, id);
    viewers.push(viewer);
    return viewer;
  };
  const runDirs = async (agent: RunningAgent) => readdir(path.join(agent.dataDir, 'plugins', 'qemu')).catch(() => [] as string[]);
  /** The source removes its copy once the move's end is durable: shortly after the job completes. */
  const copyRemoved = async (agent: RunningAgent, guestId: string) => {
    const deadline = Date.now() + underLoad(30_000);
    while ((await runDirs(agent)).includes(guestId)) {
      if (Date.now() > deadline) throw new Error(`the run dir of ${guestId} is still there`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Types a command and waits for its output and the prompt after it. */
  const shell = async (viewer: ConsoleViewerClient, command: string, expect: RegExp) => {
    const mark = viewer.received().length;
    viewer.type(`${command}\r`);
    return viewer.waitFor(expect, underLoad(30_000), mark);
  };

  /** Moves the guest; records each phase GET /jobs/{id} showed while it ran. */
  const move = async (from: RunningAgent, to: RunningAgent, id: string, extra: object = {}) => {
    const started = await from.request('POST', `/guests/${id}/migrate`, { url: to.url, ...extra });
    expect(started.status, started.text).to.equal(202);
    const jobId = started.headers.get('x-guest-job-id')!;
    const phases = new Set<string>();
    let sawBytes = false;
    for (;;) {
      const job = await from.request('GET', `/jobs/${jobId}`);
      if (job.body.Migration) {
        phases.add(job.body.Migration.phase);
        if (job.body.Migration.bytesTotal > 0) sawBytes = true;
      }
      if (job.body.Status === 'Complete' || job.body.Status === 'Error') return { job: job.body, phases, sawBytes };
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let id = '';
  let lastSeen = 0;

  it('moves a running guest live: the counter goes on on the target, no reboot, its disk content is there', async () => {
    const created = await a!.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const onA = await view(a!, id);
    await onA.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
    await onA.waitFor(PROMPT_AT_END, underLoad(60_000));
    await shell(onA, `echo ${MARKER} > /dev/vda; sync; echo written`, /written\r\n/);
    onA.type('i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done &\r');
    await onA.waitFor(/tick 5\r\n/, underLoad(30_000));

    const { job, phases, sawBytes } = await move(a!, b!, id);
    expect(job.Status, job.Message).to.equal('Complete');
    expect(job.Message).to.match(/moved live/);
    expect([...phases], 'phases seen in GET /jobs/{id}').to.include.members(['memory']);
    expect(sawBytes, 'bytes shown while copying').to.equal(true);
    lastSeen = lastTick(onA.received().toString('latin1'));
    expect(lastSeen).to.be.greaterThan(4);

    // Exactly one host has it: the target runs it, the source has nothing left.
    expect((await b!.request('GET', `/guests/${id}`)).body).to.include({ state: 'running' });
    const gone = await a!.request('GET', `/guests/${id}`);
    expect(gone.status).to.equal(404);
    expect(gone.headers.get('location'), 'the source says where it went').to.equal(`${b!.url}/guests/${id}`);
    await copyRemoved(a!, id);

    const onB = await view(b!, id);
    await onB.waitFor(new RegExp(`tick ${lastSeen + 3}\\r\\n`), underLoad(30_000));
    const seen = onB.received().toString('latin1');
    expect(seen, 'no reboot on the target').to.not.include(INIT_REACHED);
    const firstOnB = Number(/tick (\d+)/.exec(seen)![1]);
    expect(firstOnB, 'the counter went on from where it was').to.be.within(lastSeen - 2, lastSeen + 60);
    // The disk, read past the guest's page cache.
    await shell(onB, 'kill %1; echo 3 > /proc/sys/vm/drop_caches; head -c 23 /dev/vda; echo; echo done', new RegExp(`${MARKER}\\r\\ndone`));
  });

  it('moves it back, live', async () => {
    const onB = viewers.at(-1)!;
    onB.type('i=1000; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done &\r');
    await onB.waitFor(/tick 1003\r\n/, underLoad(30_000));
    const { job } = await move(b!, a!, id);
    expect(job.Status, job.Message).to.equal('Complete');
    expect((await a!.request('GET', `/guests/${id}`)).body).to.include({ state: 'running' });
    expect((await b!.request('GET', `/guests/${id}`)).status).to.equal(404);
    await copyRemoved(b!, id);
    const onA = await view(a!, id);
    const before = lastTick(onB.received().toString('latin1'));
    await onA.waitFor(new RegExp(`tick ${before + 3}\\r\\n`), underLoad(30_000));
  });

  it('a cancel leaves the guest running on the source and nothing on the target', async () => {
    // 1 MiB/s: the 128 MiB of memory take long enough to cancel mid-copy.
    const started = await a!.request('POST', `/guests/${id}/migrate`, { url: b!.url, bandwidth: 1 });
    expect(started.status, started.text).to.equal(202);
    const jobId = started.headers.get('x-guest-job-id')!;
    for (;;) {
      const job = await a!.request('GET', `/jobs/${jobId}`);
      if (job.body.Migration?.phase === 'memory' && job.body.Migration.bytesSent > 0) break;
      expect(job.body.Status, job.body.Message).to.be.oneOf(['Queued', 'Running']);
      await new Promise((r) => setTimeout(r, 100));
    }
    const cancelled = await a!.request('DELETE', `/jobs/${jobId}?wait=120`);
    expect(cancelled.status, cancelled.text).to.equal(200);
    expect(cancelled.body).to.include({ Status: 'Error', Message: 'cancelled' });
    expect((await a!.request('GET', `/guests/${id}`)).body).to.include({ state: 'running' });
    expect((await b!.request('GET', `/guests/${id}`)).status).to.equal(404);
    expect(await runDirs(b!), 'nothing left on the target').to.not.include(id);
    const onA = viewers.at(-1)!;
    const mark = onA.received().length;
    await shell(onA, 'echo still-here-$((20+22))', /still-here-42\r\n/);
    expect(onA.received().subarray(mark).toString('latin1')).to.not.include(INIT_REACHED);
  });

  it('moves a stopped guest cold; it boots on the target with its disk', async () => {
    const off = await a!.request('POST', `/guests/${id}/poweroff?wait=120`);
    expect(off.status, off.text).to.equal(200);
    const { job } = await move(a!, b!, id);
    expect(job.Status, job.Message).to.equal('Complete');
    expect(job.Message).to.match(/moved cold/);
    expect((await b!.request('GET', `/guests/${id}`)).body).to.include({ state: 'off' });
    expect((await a!.request('GET', `/guests/${id}`)).status).to.equal(404);
    await copyRemoved(a!, id);
    const onB = await view(b!, id);
    const started = await b!.request('POST', `/guests/${id}/start?wait=120`);
    expect(started.status, started.text).to.equal(200);
    await onB.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
    await onB.waitFor(PROMPT_AT_END, underLoad(60_000));
    await shell(onB, 'head -c 23 /dev/vda; echo; echo done', new RegExp(`${MARKER}\\r\\ndone`));
  });

  it('refuses before copying: an id the target has, more memory than it has, a network it lacks', async () => {
    // The target already has this id (here: the agent that holds it).
    const same = await b!.request('POST', `/guests/${id}/migrate?wait=60`, { url: b!.url });
    expect(same.status, same.text).to.equal(409);
    expect(same.body.message).to.match(/already exists on this host/);
    expect((await b!.request('GET', `/guests/${id}`)).body).to.include({ state: 'running' });

    const huge = await a!.request('POST', '/guests?wait=120&start=false', { memory: 4 * 1024 * 1024, cpu: 1, disks: [{ size: 8 }], metadata: world.tinyBoot });
    expect(huge.status, huge.text).to.equal(200);
    const refused = await a!.request('POST', `/guests/${huge.body.id}/migrate?wait=60`, { url: b!.url });
    expect(refused.status, refused.text).to.equal(422);
    expect(refused.body.message).to.match(/needs 4194304 MiB of memory; this host has \d+ MiB available/);

    bridge = `hkmig${randomBytes(2).toString('hex')}`;
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    const netted = await a!.request('POST', '/guests?wait=120&start=false', { memory: 64, cpu: 1, disks: [{ size: 8 }], nics: [{ name: 'eth0', network: bridge }], metadata: world.tinyBoot });
    expect(netted.status, netted.text).to.equal(200);
    execFileSync('ip', ['link', 'del', bridge]);
    bridge = undefined;
    const noNet = await a!.request('POST', `/guests/${netted.body.id}/migrate?wait=60`, { url: b!.url });
    expect(noNet.status, noNet.text).to.equal(422);
    expect(noNet.body.message).to.match(/is no bridge on this host/);

    for (const guest of [huge.body.id, netted.body.id]) {
      expect((await a!.request('GET', `/guests/${guest}`)).body, 'still on the source').to.include({ state: 'off' });
      expect((await b!.request('GET', `/guests/${guest}`)).status).to.equal(404);
      expect(await runDirs(b!), 'nothing made on the target').to.not.include(guest);
      expect((await a!.request('DELETE', `/guests/${guest}?wait=60`)).status).to.equal(200);
    }
  });
});
