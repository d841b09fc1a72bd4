/**
 * The libvirt backend through the real agent (config/libvirt.json, HTTP,
 * SQLite, jobs) against a real libvirtd on qemu:///system, with the tiny
 * Linux guest under TCG: the lifecycle as a client sees it, metrics that
 * follow the guest's own I/O, a shutdown the guest ignores, changes made
 * behind the agent's back with virsh or by the guest itself, and guests that
 * keep running while the agent restarts.
 */
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, sleep, waitForConsole } from '../support/backend-testing.js';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { LibvirtWorld, SYSTEM_URI, virsh } from './world.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';

describe('libvirt backend on qemu:///system (real libvirtd, tiny guest under TCG)', function () {
  this.timeout(600000); // bounded by the waits below, which scale with the measured load
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  const dataDirs: string[] = [];

  before(async function () {
    this.timeout(300000);
    world = await LibvirtWorld.create();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  after(async function () {
    this.timeout(600000); // bounded by the waits below, which scale with the measured load
    if (!world) return;
    // What the tests themselves left (each deletes its guests), then what dispose left.
    const leftByTests = await world.domains();
    await world.dispose();
    // startAgent writes the config next to the data dir; remove both.
    for (const dir of dataDirs) await Promise.all([removeDir(dir), rm(`${dir}.config.json`, { force: true })]);
    expect(leftByTests, 'domains the tests left behind').to.deep.equal([]);
    expect(await world.domains(), 'domains cleanup left behind').to.deep.equal([]);
    expect(await world.qemuPids(), 'QEMU processes left behind').to.deep.equal([]);
  });

  function config(): any {
    const c = world.config();
    return { ...c, logLevel: 'info' };
  }
  async function start(dataDir?: string): Promise<RunningAgent> {
    // The first connection to a fresh libvirtd probes QEMU's capabilities (seconds).
    agent = await startAgent({ config: config(), dataDir, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    if (!dataDirs.includes(agent.dataDir)) dataDirs.push(agent.dataDir);
    return agent;
  }
  const guestDir = (a: RunningAgent, id: string) => path.join(a.dataDir, 'plugins', 'libvirt', id);
  const consoleLog = (a: RunningAgent, id: string) => path.join(guestDir(a, id), 'console.log');
  const domainOf = (id: string) => world.prefix + id;

  async function create(a: RunningAgent, body: object = {}): Promise<any> {
    const res = await a.request('POST', '/guests?wait=30&start=false', { memory: 128, cpu: 1, disks: [{ size: 64 }], metadata: world.tinyBoot, ...body });
    expect(res.status, res.text).to.equal(200);
    expect(res.headers.get('x-guest-job-status'), `create job: ${res.text}`).to.equal('Complete');
    expect(res.body.state).to.equal('off');
    return res.body;
  }
  async function act(a: RunningAgent, id: string, action: string, query = ''): Promise<any> {
    const res = await a.request('POST', `/guests/${id}/${action}?wait=90${query}`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    const job = (await a.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    expect(job.Status, `${action} job: ${job.Message}`).to.equal('Complete');
    return res.body;
  }
  async function stateOf(a: RunningAgent, id: string): Promise<string> {
    return (await a.request('GET', `/guests/${id}`)).body.state;
  }
  async function waitForState(a: RunningAgent, id: string, state: string, timeoutMs = underLoad(15000)): Promise<void> {
    await waitFor(async () => (await stateOf(a, id)) === state, timeoutMs, `guest ${id} to be "${state}" (it is "${await stateOf(a, id)}")`);
  }
  async function metrics(a: RunningAgent, id: string, type: string): Promise<any> {
    const res = await a.request('GET', `/guests/${id}/metrics/${type}`);
    expect(res.status, `${type} metrics: ${res.text}`).to.equal(200);
    return res.body;
  }
  async function bootAndShell(a: RunningAgent, id: string, from = 0): Promise<GuestShell> {
    // Measured from the call: the boot was just asked for.
    const t0 = Date.now();
    recordBoot((await waitForConsole(consoleLog(a, id), INIT_REACHED, Math.max(underLoad(60000), FIRST_BOOT_MS), from)) - t0);
    return GuestShell.connect(path.join(guestDir(a, id), 'serial1.sock'));
  }
  /** The first bytes a VNC server sends: "RFB 003.008\n". */
  async function rfbBanner(port: number): Promise<string> {
    const net = await import('node:net');
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => undefined);
      socket.setTimeout(5000, () => socket.destroy(new Error(`no VNC banner on port ${port}`)));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString('latin1'));
      });
      socket.once('error', reject);
    });
  }
  async function consoleSize(a: RunningAgent, id: string): Promise<number> {
    const { stat } = await import('node:fs/promises');
    return (await stat(consoleLog(a, id)).catch(() => ({ size: 0 }))).size;
  }

  it('runs the whole lifecycle of a guest, with metrics that rise with its I/O', async () => {
    const a = await start();
    const guest = await create(a, { cpu: 2, nics: [{ network: world.bridge }] });
    const id = guest.id;
    expect(guest.metadata['libvirt.domain']).to.equal(domainOf(id));
    expect(guest.metadata['libvirt.uuid']).to.equal(id);
    expect(guest.disks[0].volume).to.equal(`${world.pool}/${domainOf(id)}-vda.qcow2`);
    expect((await virsh(SYSTEM_URI, 'domuuid', domainOf(id))).trim()).to.equal(id);

    const started = await act(a, id, 'start');
    expect(await stateOf(a, id)).to.equal('running');
    expect(started.vnc, 'the VNC port libvirt chose').to.be.at.least(5900);
    expect(await rfbBanner(started.vnc), 'a VNC server answers there').to.match(/^RFB \d{3}\.\d{3}/);
    const shell = await bootAndShell(a, id);

    const cpu = await metrics(a, id, 'cpu');
    expect(cpu, 'one entry per vCPU').to.have.length(2);
    expect(cpu[0].vcpu_time, 'vCPU 0 ran').to.be.greaterThan(0);
    expect(cpu[0].cpu_time, 'domain time covers its vCPUs').to.be.at.least(cpu[0].vcpu_time);

    const disk0 = (await metrics(a, id, 'disk')).vda;
    const nic0 = (await metrics(a, id, 'nic')).net0;
    expect(nic0, 'nic metrics keyed by NIC name').to.include.keys('rx_bytes', 'tx_packets', 'rx_drops');
    await shell.run('dd if=/dev/vda of=/dev/null bs=4096 count=2048 2>/dev/null');
    await shell.run('dd if=/dev/zero of=/dev/vda bs=4096 count=1024 conv=fsync 2>/dev/null');
    // Link-local multicast stays on this run's own bridge.
    await shell.run('ip link set eth0 up; sleep 1; ping6 -c 3 -W 1 ff02::1%eth0 >/dev/null 2>&1; true', 30000);
    const disk1 = (await metrics(a, id, 'disk')).vda;
    const nic1 = (await metrics(a, id, 'nic')).net0;
    expect(disk1.read_bytes - disk0.read_bytes, 'bytes read by dd').to.be.at.least(8 * 1024 * 1024);
    expect(disk1.read_ops, 'read ops').to.be.greaterThan(disk0.read_ops);
    expect(disk1.write_bytes - disk0.write_bytes, 'bytes written by dd').to.be.at.least(4 * 1024 * 1024);
    expect(disk1.read_time, 'read time in seconds').to.be.greaterThan(disk0.read_time).and.below(60);
    expect(disk1.flush_ops, 'conv=fsync flushes').to.be.greaterThan(disk0.flush_ops);
    expect(nic1.tx_packets, 'packets the guest sent').to.be.greaterThan(nic0.tx_packets);
    expect(nic1.tx_bytes).to.be.greaterThan(nic0.tx_bytes);
    const cpu1 = await metrics(a, id, 'cpu');
    expect(cpu1[0].vcpu_time + cpu1[1].vcpu_time).to.be.greaterThan(cpu[0].vcpu_time + cpu[1].vcpu_time);
    shell.close();

    await act(a, id, 'suspend');
    expect((await virsh(SYSTEM_URI, 'domstate', domainOf(id))).trim()).to.equal('paused');
    await act(a, id, 'start');
    expect((await virsh(SYSTEM_URI, 'domstate', domainOf(id))).trim()).to.equal('running');

    let mark = await consoleSize(a, id);
    await act(a, id, 'reboot');
    (await bootAndShell(a, id, mark)).close();
    mark = await consoleSize(a, id);
    await act(a, id, 'restart');
    (await bootAndShell(a, id, mark)).close();

    const down = await act(a, id, 'shutdown');
    expect(down.state, 'a graceful shutdown').to.equal('shutdown');
    expect((await virsh(SYSTEM_URI, 'domstate', '--reason', domainOf(id))).trim()).to.equal('shut off (shutdown)');

    await act(a, id, 'start');
    await act(a, id, 'poweroff');
    expect(await stateOf(a, id)).to.equal('off');
    expect((await a.request('GET', `/guests/${id}/metrics/cpu`)).status, 'metrics of a stopped guest').to.equal(409);

    const volumesBefore = await world.volumes();
    expect(volumesBefore).to.include(`${domainOf(id)}-vda.qcow2`);
    const gone = await a.request('DELETE', `/guests/${id}?wait=60`);
    expect(gone.status, gone.text).to.equal(200);
    expect(await world.domains()).to.not.include(domainOf(id));
    expect(await world.volumes()).to.not.include(`${domainOf(id)}-vda.qcow2`);
    expect((await a.request('GET', `/guests/${id}`)).status).to.equal(404);
  });

  it('fails a shutdown the guest ignores after the timeout, and leaves it running', async () => {
    const a = await start();
    const { id } = await create(a);
    await act(a, id, 'start');
    const shell = await bootAndShell(a, id);
    await shell.run('killall acpid');
    shell.close();
    const t0 = Date.now();
    const res = await a.request('POST', `/guests/${id}/shutdown?wait=30&timeout=2`);
    const job = (await a.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.contain('guest did not power off within 2 s (does it handle ACPI?)');
    expect(Date.now() - t0, 'bounded by the timeout').to.be.below(15000);
    expect(await stateOf(a, id)).to.equal('running');
    expect((await virsh(SYSTEM_URI, 'domstate', domainOf(id))).trim()).to.equal('running');
    await act(a, id, 'poweroff');
    expect((await a.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
  });

  it('sees state changes made with virsh and by the guest itself', async () => {
    const a = await start();
    const { id } = await create(a);
    await act(a, id, 'start');
    const shell = await bootAndShell(a, id);

    await virsh(SYSTEM_URI, 'suspend', domainOf(id));
    await waitForState(a, id, 'suspended');
    await virsh(SYSTEM_URI, 'resume', domainOf(id));
    await waitForState(a, id, 'running');

    shell.send('poweroff -f');
    await waitForState(a, id, 'shutdown', underLoad(30000));
    shell.close();

    await virsh(SYSTEM_URI, 'start', domainOf(id));
    await waitForState(a, id, 'running');
    await virsh(SYSTEM_URI, 'destroy', domainOf(id));
    await waitForState(a, id, 'off');
    const log = a.logs.filter((l) => l.includes('guest state changed outside a job'));
    expect(log.some((l) => l.includes('libvirt event')), 'changes came from libvirt events').to.equal(true);
    expect((await a.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
  });

  it('leaves guests running while the agent restarts, and reads back what changed meanwhile', async () => {
    let a = await start();
    const one = (await create(a)).id;
    const two = (await create(a)).id;
    await act(a, one, 'start');
    await act(a, two, 'start');
    const dataDir = a.dataDir;
    const qemusBefore = (await world.qemuPids()).sort();
    expect(qemusBefore).to.have.length(2);

    await a.stop();
    agent = undefined;
    // Behind the agent's back: one guest paused while no agent runs.
    await virsh(SYSTEM_URI, 'suspend', domainOf(two));
    expect((await world.qemuPids()).sort(), 'the same QEMU processes still run').to.deep.equal(qemusBefore);

    a = await start(dataDir);
    expect(await stateOf(a, one)).to.equal('running');
    await waitForState(a, two, 'suspended');
    expect((await metrics(a, one, 'cpu'))[0].vcpu_time).to.be.greaterThan(0);
    await act(a, two, 'start');
    expect((await virsh(SYSTEM_URI, 'domstate', domainOf(two))).trim()).to.equal('running');
    for (const id of [one, two]) expect((await a.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
    expect(await world.domains()).to.deep.equal([]);
    await sleep(0);
  });

  it('reconnects after libvirtd restarts, and catches up on what changed meanwhile', async function () {
    // Restarting the host's libvirtd is only for a daemon this run started (CI), or when asked.
    if (!world.ownsDaemon && process.env.HK_TEST_RESTART_LIBVIRTD !== '1') {
      console.log('      (skipped: libvirtd was already running; set HK_TEST_RESTART_LIBVIRTD=1 to restart it anyway)');
      this.skip();
    }
    const a = await start();
    const { id } = await create(a);
    await act(a, id, 'start');
    const health0 = (await a.request('GET', '/health')).body;
    expect(JSON.stringify(health0), 'healthy before the restart').to.not.contain('does not answer');
    await world.restartDaemon();
    // Behind the agent's back while its event stream was down or reconnecting.
    await virsh(SYSTEM_URI, 'suspend', domainOf(id));
    await waitForState(a, id, 'suspended', underLoad(30000)).catch((e) => {
      console.log(a.logs.filter((l) => l.includes('"plugin":"libvirt"') || l.includes('outside a job')).join('\n'));
      throw e;
    });
    await waitFor(async () => (await a.request('GET', `/guests/${id}/metrics/disk`)).status === 200, underLoad(20000), 'metrics to answer again after the restart');
    await act(a, id, 'start');
    expect((await virsh(SYSTEM_URI, 'domstate', domainOf(id))).trim()).to.equal('running');
    expect(a.logs.some((l) => l.includes('libvirt event stream ended; reconnecting')), 'the event stream noticed').to.equal(true);
    expect(JSON.stringify(health0)).to.contain('virshStarts');
    expect((await a.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
  });

  it('makes disks that name an image copy-on-write overlays of that pool volume, and says which image is missing', async () => {
    const a = await start();
    const base = `${world.prefix}base.qcow2`;
    await virsh(SYSTEM_URI, 'vol-create-as', world.pool, base, '32M', '--format', 'qcow2');
    try {
      const guest = await create(a, { metadata: {}, disks: [{ image: base }, { image: base, size: 48 }] });
      expect(guest.disks.map((d: any) => d.size), 'an overlay is as large as its base unless asked larger').to.deep.equal([32, 48]);
      const xml = await virsh(SYSTEM_URI, 'vol-dumpxml', '--pool', world.pool, `${domainOf(guest.id)}-vda.qcow2`);
      expect(xml, 'the overlay is backed by the base volume').to.match(new RegExp(`<backingStore>\\s*<path>[^<]*${base}</path>`));
      expect((await a.request('DELETE', `/guests/${guest.id}?wait=60`)).status).to.equal(200);
      expect(await world.volumes(), 'the base stays, the overlays go').to.deep.equal([base]);

      // libvirt.requireImages refuses it before any job or guest record.
      const res = await a.request('POST', '/guests?wait=30', { disks: [{ image: 'no-such-image' }] });
      expect(res.status).to.equal(400);
      expect(res.body.message).to.contain(`image "no-such-image" is not in libvirt storage pool "${world.pool}"`);
    } finally {
      await virsh(SYSTEM_URI, 'vol-delete', '--pool', world.pool, base).catch(() => undefined);
    }
  });

  it('puts a NIC on a libvirt network, a bridge or user-mode networking as its network names, and refuses an unknown one', async () => {
    const a = await start();
    const guest = await create(a, { nics: [{ network: world.network }, { network: world.bridge }, { network: '' }] });
    await act(a, guest.id, 'start');
    // domiflist: INTERFACE TYPE SOURCE MODEL MAC; --inactive shows the definition (a running
    // network interface is listed by what it resolved to, a bridge).
    const rows = (await virsh(SYSTEM_URI, 'domiflist', '--inactive', domainOf(guest.id))).trim().split('\n').map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => [r[1], r[2]])).to.deep.equal([
      ['network', world.network],
      ['bridge', world.bridge],
      ['user', '-'],
    ]);
    expect(rows[0][0], 'the agent-assigned host device').to.equal(guest.nics[0].device);
    expect(rows.map((r) => r[4])).to.deep.equal(guest.nics.map((n: any) => n.mac));
    const nic = await metrics(a, guest.id, 'nic');
    expect(Object.keys(nic).sort(), 'user-mode NICs have no host device to count').to.deep.equal(['net0', 'net1']);
    await act(a, guest.id, 'poweroff');
    expect((await a.request('DELETE', `/guests/${guest.id}?wait=60`)).status).to.equal(200);

    const res = await a.request('POST', '/guests?wait=30', { nics: [{ network: 'no-such-net' }] });
    const job = (await a.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.contain('"no-such-net" is neither a libvirt network').and.contain(world.network);
    expect((await a.request('DELETE', `/guests/${job.GuestID}?wait=60`)).status).to.equal(200);
  });
});
