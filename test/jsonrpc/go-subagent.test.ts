/**
 * A mistify sub-agent written in Go (test/go-subagent: mistify-agent-libvirt's
 * method names, answers encoded by encoding/json with client.Guest's and
 * rpc's tags) behind the jsonrpc plugin, from a config in mistify-agent's
 * format. Its answers leave out every omitempty field holding its zero
 * value (`type` "" of a VM, `vnc` 0 of a stopped guest, empty `metadata`,
 * `nics`, `disks`, metrics parts) and send nil slices as null, and they name
 * states as libvirt does (paused, shutoff). A guest driven through create,
 * every metrics kind, every action and delete stays usable: each GET
 * answers, each action lands in the state it promises, nothing is a 400.
 */
import { expect } from 'chai';
import type { ApiResponse } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { GoSubAgent } from '../support/go-subagent.js';

function mistifyConfig(port: number) {
  const stage = (method: string) => ({ stages: [{ service: 'libvirt', method: `Libvirt.${method}` }] });
  return {
    services: { libvirt: { port } },
    actions: {
      create: stage('Create'),
      run: stage('Start'),
      shutdown: stage('Shutdown'),
      reboot: stage('Reboot'),
      restart: stage('Restart'),
      poweroff: stage('Poweroff'),
      suspend: stage('Suspend'),
      resume: stage('Resume'),
      delete: stage('Delete'),
      cpuMetrics: stage('CPUMetrics'),
      nicMetrics: stage('NicMetrics'),
      diskMetrics: stage('DiskMetrics'),
    },
    dbpath: '/nonexistent/agent.db', // --data-dir from the test wins
    accessLog: false,
    jobs: { stageTimeoutSeconds: 30 },
  };
}

/** What a Go client posts for a guest (mistify's client.Guest, every non-omitempty field sent). */
const goClientGuest = {
  id: '',
  memory: 256,
  cpu: 2,
  nics: [{ network: 'br0', model: 'virtio', address: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.1', vlans: null }],
  disks: [{ bus: 'virtio', device: '', size: 1024, volume: '', image: '', source: '' }],
  metadata: { owner: 'ops' },
};

describe('jsonrpc: a Go sub-agent, answers as encoding/json writes them', function () {
  this.timeout(120_000);
  let sub: GoSubAgent;
  before(async function () {
    this.timeout(320_000); // the first go build of a fresh cache
    sub = await GoSubAgent.start();
  });
  const agent = suiteAgent(() => ({ config: mistifyConfig(sub.port) }));
  after(async () => {
    await sub?.stop();
    await GoSubAgent.remove();
  });

  /** The guest as GET answers it, which must succeed. */
  async function read(id: string): Promise<ApiResponse['body']> {
    const res = await agent.request('GET', `/guests/${id}`);
    expect(res.status, `GET /guests/${id}: ${res.text}`).to.equal(200);
    return res.body;
  }

  async function act(id: string, action: string, state: string): Promise<void> {
    const res = await agent.request('POST', `/guests/${id}/${action}?wait=30`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    expect(res.body.state, `state after ${action}`).to.equal(state);
    const guest = await read(id);
    expect(guest.state, `state GET answers after ${action}`).to.equal(state);
    expect(guest.type, `type after ${action}`).to.equal('');
    // A running guest has a VNC port; the sub-agent leaves vnc out for any other, which reads as 0.
    if (state === 'running' || state === 'suspended') expect(guest.vnc, `vnc after ${action}`).to.be.above(5900);
    else expect(guest.vnc, `vnc after ${action}`).to.equal(0);
    expect(guest.metadata, `metadata after ${action}`).to.deep.equal({ owner: 'ops' });
  }

  it('creates a guest, reads every metrics kind, runs every action and deletes it; the guest stays usable', async () => {
    const created = await agent.request('POST', '/guests?wait=30', goClientGuest);
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    expect(created.body).to.include({ type: '', image: '', state: 'running', memory: 256, cpu: 2 });
    const guest = await read(id);
    expect(guest).to.include({ id, type: '', image: '', state: 'running', memory: 256, cpu: 2 });
    expect(guest.metadata).to.deep.equal({ owner: 'ops' });
    // The NIC came back with `vlans: null` and no omitted field lost: name, mac and device as the agent assigned them.
    expect(guest.nics).to.have.length(1);
    expect(guest.nics[0]).to.include({ name: 'net0', network: 'br0', model: 'virtio', address: '10.0.0.5' });
    expect(guest.nics[0].vlans).to.deep.equal([]);
    expect(guest.nics[0].mac).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(guest.disks).to.have.length(1);
    expect(guest.disks[0]).to.include({ bus: 'virtio', device: 'vda', size: 1024, source: `/dev/zvol/guests/${id}/disk-0` });

    const cpu = await agent.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.have.length(2);
    expect(cpu.body[0].cpu_time).to.be.above(0);
    const nic = await agent.request('GET', `/guests/${id}/metrics/nic`);
    expect(nic.status, nic.text).to.equal(200);
    expect(Object.keys(nic.body)).to.deep.equal(['net0']);
    expect(nic.body.net0).to.include({ name: 'net0', rx_errors: 0, tx_drops: 0 });
    const disk = await agent.request('GET', `/guests/${id}/metrics/disk`);
    expect(disk.status, disk.text).to.equal(200);
    expect(Object.keys(disk.body)).to.deep.equal(['vda']);
    expect(disk.body.vda.read_bytes).to.be.above(0);

    for (const [action, state] of [
      ['suspend', 'suspended'],
      ['resume', 'running'],
      ['suspend', 'suspended'],
      ['start', 'running'], // start resumes a suspended guest
      ['reboot', 'running'],
      ['restart', 'running'],
      ['shutdown', 'shutdown'],
      ['start', 'running'],
      ['poweroff', 'off'],
      ['start', 'running'],
    ]) {
      await act(id, action, state);
    }

    const deleted = await agent.request('DELETE', `/guests/${id}?wait=30`);
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).status).to.equal(404);
    const calls = await sub.calls();
    for (const method of ['Create', 'CPUMetrics', 'NicMetrics', 'DiskMetrics', 'Suspend', 'Resume', 'Start', 'Reboot', 'Restart', 'Shutdown', 'Poweroff', 'Delete']) {
      expect(calls, `the sub-agent got Libvirt.${method}`).to.include(`Libvirt.${method}`);
    }
  });

  it('reads metrics a guest has none of (the sub-agent leaves the part out) as empty', async () => {
    const created = await agent.request('POST', '/guests?wait=30', { memory: 128, cpu: 1, nics: null, disks: null, metadata: null });
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    expect(await read(id)).to.include({ type: '', state: 'running' });
    expect((await read(id)).metadata).to.deep.equal({});
    const nic = await agent.request('GET', `/guests/${id}/metrics/nic`);
    expect(nic.status, nic.text).to.equal(200);
    expect(nic.body).to.deep.equal({});
    const disk = await agent.request('GET', `/guests/${id}/metrics/disk`);
    expect(disk.status, disk.text).to.equal(200);
    expect(disk.body).to.deep.equal({});
    const deleted = await agent.request('DELETE', `/guests/${id}?wait=30`);
    expect(deleted.status, deleted.text).to.equal(200);
  });

  it('keeps what the client gave when a sub-agent answers a Guest it built afresh (id and state only)', async () => {
    const created = await agent.request('POST', '/guests?wait=30', { ...goClientGuest, metadata: { owner: 'ops', 'gosub.answer': 'new-guest' } });
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    for (const [action, state] of [['create', 'running'], ['poweroff', 'off'], ['start', 'running']]) {
      if (action !== 'create') {
        const res = await agent.request('POST', `/guests/${id}/${action}?wait=30`);
        expect(res.status, `${action}: ${res.text}`).to.equal(200);
      }
      const guest = await read(id);
      expect(guest, `after ${action}`).to.include({ type: '', state, memory: 256, cpu: 2 });
      expect(guest.metadata, `after ${action}`).to.deep.equal({ owner: 'ops', 'gosub.answer': 'new-guest' });
      expect(guest.nics, `after ${action}`).to.have.length(1);
      expect(guest.disks, `after ${action}`).to.have.length(1);
    }
    const deleted = await agent.request('DELETE', `/guests/${id}?wait=30`);
    expect(deleted.status, deleted.text).to.equal(200);
  });
});
