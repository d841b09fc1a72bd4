/**
 * The QEMU backend through the real agent (config/qemu.json, HTTP, SQLite,
 * jobs) with real QEMU under TCG: the lifecycle as a client sees it, a shutdown
 * that times out, a guest acting alone, metrics during a job, and guests that
 * survive kill -9 of the agent.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, sleep, waitForConsole } from '../support/backend-testing.js';
import { killTestQemus } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';
import { processAlive as alive } from '../support/process-alive.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';


describe('QEMU backend through the agent (real QEMU under TCG)', function () {
  this.timeout(600000); // bounded by the waits below, which scale with the measured load
  let world: QemuWorld;
  let agent: RunningAgent | undefined;
  const dataDirs: string[] = [];

  before(async function () {
    this.timeout(300000);
    world = await QemuWorld.create({ bridge: true });
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  after(async () => {
    for (const dir of dataDirs) {
      await killTestQemus(path.join(dir, 'plugins', 'qemu'));
      await removeDir(dir);
    }
    await world?.dispose();
  });

  async function start(dataDir?: string): Promise<RunningAgent> {
    agent = await startAgent({ config: tcgQemuConfig(world.imagesDir), dataDir, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    if (!dataDirs.includes(agent.dataDir)) dataDirs.push(agent.dataDir);
    return agent;
  }
  const runDir = (a: RunningAgent, id: string) => path.join(a.dataDir, 'plugins', 'qemu', id);
  const consoleLog = (a: RunningAgent, id: string) => path.join(runDir(a, id), 'console.log');
  const pidOf = (a: RunningAgent, id: string) => Number(readFileSync(path.join(runDir(a, id), 'qemu.pid'), 'utf8'));
  async function create(a: RunningAgent, body: object): Promise<any> {
    const res = await a.request('POST', '/guests?wait=30&start=false', { memory: 256, cpu: 1, disks: [{ size: 32 }], ...body });
    expect(res.status, res.text).to.equal(200);
    expect(res.body.state).to.equal('off');
    return res.body;
  }
  async function act(a: RunningAgent, id: string, action: string, query = ''): Promise<any> {
    const res = await a.request('POST', `/guests/${id}/${action}?wait=60${query}`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    expect(res.headers.get('x-guest-job-status'), `${action} job`).to.equal('Complete');
    return res.body;
  }
  async function stateOf(a: RunningAgent, id: string): Promise<string> {
    return (await a.request('GET', `/guests/${id}`)).body.state;
  }

  it('creates, starts, meters, suspends, resumes, reboots, restarts, shuts down, starts, powers off and deletes a guest', async () => {
    const a = await start();
    const guest = await create(a, { nics: [{}], metadata: world.tinyBoot });
    const disk = guest.disks[0].source as string;
    expect(existsSync(disk), 'qcow2 created').to.equal(true);
    expect(guest.nics[0].device, 'no bridge named: user-mode NIC').to.equal('');

    const t0 = Date.now();
    const res = await a.request('POST', `/guests/${guest.id}/start`);
    expect(res.status, res.text).to.equal(202);
    const initMs = recordBoot((await waitForConsole(consoleLog(a, guest.id), INIT_REACHED, FIRST_BOOT_MS)) - t0);
    console.log(`      POST start -> guest init (TCG, through the agent): ${initMs} ms`);
    await waitFor(async () => (await stateOf(a, guest.id)) === 'running', underLoad(10000), 'running');
    expect(a.logs.some((l) => l.includes('QEMU started with TCG')), 'agent log names the accelerator').to.equal(true);

    const cpu = await a.request('GET', `/guests/${guest.id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.have.length(1);
    expect(cpu.body[0].vcpu_time).to.be.greaterThan(0);
    const shell = await GuestShell.connect(path.join(runDir(a, guest.id), 'serial1.sock'));
    await shell.run('dd if=/dev/zero of=/dev/vda bs=64k count=16 conv=fsync 2>/dev/null');
    shell.close();
    const disks = await a.request('GET', `/guests/${guest.id}/metrics/disk`);
    expect(disks.status, disks.text).to.equal(200);
    expect(disks.body.vda.write_bytes).to.be.at.least(16 * 65536);
    const nics = await a.request('GET', `/guests/${guest.id}/metrics/nic`);
    expect(nics.status, nics.text).to.equal(200);
    expect(nics.body.net0.counters, 'user-mode NIC says it has no counters').to.match(/^unavailable: user-mode networking/);
    expect(nics.body.net0).to.not.have.property('rx_bytes');

    const consoleSize = () => readFileSync(consoleLog(a, guest.id)).length;
    for (const [action, expected, reboots] of [
      ['suspend', 'suspended', false],
      ['start', 'running', false],
      ['reboot', 'running', true],
      ['restart', 'running', true],
    ] as const) {
      const offset = consoleSize();
      expect((await act(a, guest.id, action)).state, `state after ${action}`).to.equal(expected);
      // A guest still booting would miss the next action's power button.
      if (reboots) await waitForConsole(consoleLog(a, guest.id), INIT_REACHED, underLoad(30000), offset);
    }
    await sleep(500); // acpid must be up to hear the power button
    const pid = pidOf(a, guest.id);
    expect((await act(a, guest.id, 'shutdown', '&timeout=20')).state).to.equal('shutdown');
    expect(alive(pid)).to.equal(false);
    expect((await act(a, guest.id, 'start')).state).to.equal('running');
    const pid2 = pidOf(a, guest.id);
    expect((await act(a, guest.id, 'poweroff')).state).to.equal('off');
    expect(alive(pid2)).to.equal(false);
    const del = await a.request('DELETE', `/guests/${guest.id}?wait=30`);
    expect(del.status, del.text).to.equal(200);
    expect((await a.request('GET', `/guests/${guest.id}`)).status).to.equal(404);
    expect(existsSync(disk), 'disk file removed').to.equal(false);
    expect(existsSync(runDir(a, guest.id)), 'run dir removed').to.equal(false);
  });

  it('ends a shutdown of a guest without an OS as an Error job after ?timeout, keeps it running, and answers metrics meanwhile', async () => {
    const a = await start();
    const guest = await create(a, {});
    await act(a, guest.id, 'start');
    const res = await a.request('POST', `/guests/${guest.id}/shutdown?timeout=3`);
    expect(res.status, res.text).to.equal(202);
    const jobId = res.headers.get('x-guest-job-id')!;
    await sleep(300);
    const t = Date.now();
    const cpu = await a.request('GET', `/guests/${guest.id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(Date.now() - t, 'metrics do not wait for the shutdown job').to.be.lessThan(1000);
    expect((await a.request('GET', `/jobs/${jobId}`)).body.Status, 'the shutdown job still runs').to.equal('Running');
    const job = await waitFor(async () => {
      const j = (await a.request('GET', `/jobs/${jobId}`)).body;
      return j.Status === 'Error' || j.Status === 'Complete' ? j : undefined;
    }, 15000, 'shutdown job to end');
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.include('guest did not power off within 3 s (does it handle ACPI?)');
    expect(await stateOf(a, guest.id)).to.equal('running');
    expect(alive(pidOf(a, guest.id))).to.equal(true);
    await act(a, guest.id, 'poweroff');
    expect((await a.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);
  });

  it('reports a guest that powers itself off as shutdown, and one that panics as crashed, without any API call', async () => {
    const a = await start();
    const guest = await create(a, { metadata: world.tinyBoot });
    await act(a, guest.id, 'start');
    const shell = await GuestShell.connect(path.join(runDir(a, guest.id), 'serial1.sock'));
    shell.send('poweroff -f');
    shell.close();
    await waitFor(async () => (await stateOf(a, guest.id)) === 'shutdown', underLoad(20000), 'state shutdown');
    expect((await act(a, guest.id, 'start')).state, 'starts again').to.equal('running');
    const again = await GuestShell.connect(path.join(runDir(a, guest.id), 'serial1.sock'));
    again.send('echo c > /proc/sysrq-trigger');
    again.close();
    await waitFor(async () => (await stateOf(a, guest.id)) === 'crashed', underLoad(20000), 'state crashed after a kernel panic');
    expect((await act(a, guest.id, 'start')).state, 'a crashed guest starts again').to.equal('running');
    await act(a, guest.id, 'poweroff');
    expect((await a.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);
  });

  it('keeps guests running through kill -9 of the agent; the restarted agent finds them and can stop them', async () => {
    const a = await start();
    const one = await create(a, { metadata: world.tinyBoot });
    const two = await create(a, {});
    const off = await create(a, {});
    const lost = await create(a, {});
    await act(a, one.id, 'start');
    await act(a, two.id, 'start');
    await act(a, two.id, 'suspend');
    await act(a, lost.id, 'start');
    const pids = [pidOf(a, one.id), pidOf(a, two.id)];
    await a.kill9();
    agent = undefined;
    await sleep(300);
    expect(pids.map(alive), 'QEMU processes outlive the agent').to.deep.equal([true, true]);
    // This one dies while no agent watches.
    process.kill(pidOf(a, lost.id), 'SIGKILL');
    await sleep(300);

    const b = await start(a.dataDir);
    expect(await stateOf(b, one.id)).to.equal('running');
    expect(await stateOf(b, two.id)).to.equal('suspended');
    expect(await stateOf(b, off.id)).to.equal('off');
    expect(await stateOf(b, lost.id), 'QEMU gone while the agent was down').to.equal('off');
    expect((await b.request('GET', `/guests/${one.id}/metrics/cpu`)).status).to.equal(200);
    // The reattached QMP connection carries events again.
    await waitForConsole(consoleLog(b, one.id), INIT_REACHED, underLoad(30000));
    await sleep(500);
    expect((await act(b, one.id, 'shutdown', '&timeout=20')).state).to.equal('shutdown');
    expect((await act(b, two.id, 'start')).state).to.equal('running');
    // A clean agent stop (SIGTERM) leaves guests running too.
    await b.stop();
    agent = undefined;
    expect(alive(pids[1]), 'QEMU outlives a clean agent stop').to.equal(true);
    const c = await start(a.dataDir);
    expect(await stateOf(c, two.id)).to.equal('running');
    expect((await act(c, two.id, 'poweroff')).state).to.equal('off');
    expect(pids.map(alive)).to.deep.equal([false, false]);
    for (const g of [one, two, off, lost]) expect((await c.request('DELETE', `/guests/${g.id}?wait=30`)).status).to.equal(200);
  });

  it('creates disks as overlays of an image from the images dir, and refuses a create whose image is missing, naming it', async () => {
    const a = await start();
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(world.imagesDir, 'base.qcow2'), '48M']);
    const guest = await create(a, { disks: [{ image: 'base' }] });
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', guest.disks[0].source], { encoding: 'utf8' }));
    expect(info['backing-filename']).to.equal(path.join(world.imagesDir, 'base.qcow2'));
    expect(guest.disks[0].size).to.equal(48);
    const metrics = await a.request('GET', `/guests/${guest.id}/metrics/cpu`);
    expect(metrics.status, 'cpu metrics of a guest that is off').to.equal(409);
    expect(metrics.body.message).to.match(/is not running \(state "off"\); cpu metrics need a running QEMU/);
    expect((await a.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);

    // A missing image is refused inside the request (docs/images.md): no
    // guest, no job, and the answer names the image and how to fetch it.
    const before = (await a.request('GET', '/guests')).body.length;
    const res = await a.request('POST', '/guests?wait=30', { memory: 128, disks: [{ image: 'no-such-image' }] });
    expect(res.status, res.text).to.equal(400);
    expect(res.body.message).to.include('image "no-such-image" is not on this host');
    expect(res.headers.get('x-guest-job-id'), 'a refused create queues no job').to.equal(null);
    expect((await a.request('GET', '/guests')).body.length, 'a refused create leaves no guest').to.equal(before);
  });

  it('puts a NIC whose network is a bridge on a tap in that bridge, counts its traffic, and removes the tap on delete', async () => {
    const a = await start();
    const bridge = world.bridge!;
    const guest = await create(a, { nics: [{ network: bridge.name }], metadata: world.tinyBoot });
    const tap = guest.nics[0].device as string;
    expect(tap).to.match(/^hk[0-9a-f]{8}n0$/);
    expect(readFileSync(`/sys/class/net/${tap}/master/uevent`, 'utf8')).to.include(`INTERFACE=${bridge.name}`);
    await act(a, guest.id, 'start');
    const shell = await GuestShell.connect(path.join(runDir(a, guest.id), 'serial1.sock'));
    await shell.run(`ip link set eth0 up && ip addr add ${bridge.guestAddress(3)}/24 dev eth0 && ping -c 2 -W 2 ${bridge.hostAddress}`, 30000);
    shell.close();
    const nic = (await a.request('GET', `/guests/${guest.id}/metrics/nic`)).body.net0;
    expect(nic.tx_packets, 'pings the guest sent').to.be.at.least(2);
    expect(nic.rx_packets, 'replies the guest received').to.be.at.least(2);
    expect((await a.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);
    expect(existsSync(`/sys/class/net/${tap}`), 'tap removed').to.equal(false);
  });
});
