/**
 * The wire contract as Go clients (and JavaScript ones) use it, against the
 * real agent on the simulator backend: the conformance flows, the Go zero
 * values and agent-owned fields of a create, every action with every body a
 * client sends, and per-guest-type (container) action plans.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { agentsPerTest, suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { goFlow, jsFlow, type FlowBackend } from '../support/conformance-flows.js';
import { buildGoClient, goClient, removeGoClient } from '../support/go-client.js';

const simulator: FlowBackend = { guest: {}, jobTimeoutSeconds: 10, booted: async () => undefined };

describe('conformance: Go and JavaScript clients on the simulator', function () {
  this.timeout(120_000);
  before(async function () {
    this.timeout(300_000); // a first go build on a cold cache
    await buildGoClient();
  });
  after(async () => {
    await removeGoClient();
  });
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));

  it('a Go client creates (a running guest), gets, lists, patches and removes metadata, reads metrics, runs all seven actions and polls their jobs', async () => {
    await goFlow(agent, simulator);
  });

  it('a JavaScript client does the same with fields left out, {} or no body', async () => {
    await jsFlow(agent, simulator);
  });

  it("a Go client takes, lists, gets, rolls back to and deletes a snapshot, decoding mistify's []Snapshot from each answer", async () => {
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 64, disks: [{ size: 8 }] });
    expect(created.status, created.text).to.equal(200);
    const out = await goClient(agent.url, 'snapshots', created.body.id, 'go-snap');
    const one = [{ id: 'go-snap', size: 0 }];
    expect(out).to.deep.equal({ created: one, listed: one, got: one, rolledBack: one, deleted: one, after: [] });
  });

  it('takes Go zero values as "not given" and ignores the fields the agent owns; a client MAC stays', async () => {
    const sent = {
      id: '',
      type: 'kvm',
      state: 'running',
      vnc: 5901,
      memory: 0,
      cpu: 0,
      metadata: null,
      nics: [
        { name: '', network: '', model: '', mac: '', address: '', netmask: '', gateway: '', device: 'tap-old', vlans: null },
        { network: '', model: 'e1000', mac: '52:54:00:AA:BB:CC', address: '', netmask: '', gateway: '', vlans: [12] },
      ],
      disks: [
        { bus: '', device: '', size: 64, volume: '', image: '', source: '' },
        { bus: 'scsi', device: 'vdz', size: 8, volume: '', image: '', source: 'ubuntu-22.04' },
      ],
      unknownField: { ignored: true },
    };
    const res = await agent.request('POST', '/guests?wait=10', sent);
    expect(res.status, res.text).to.equal(200);
    const g = res.body;
    expect(g).to.include({ type: 'kvm', state: 'running', memory: 512, cpu: 1, vnc: 0 });
    expect(g).to.not.have.property('unknownField');
    expect(g.metadata).to.deep.equal({});
    expect(g.nics[0]).to.include({ name: 'net0', model: 'virtio' });
    expect(g.nics[0].device, 'the agent names the tap').to.not.equal('tap-old');
    expect(g.nics[0].vlans).to.deep.equal([]);
    expect(g.nics[1]).to.include({ model: 'e1000', mac: '52:54:00:aa:bb:cc' });
    expect(g.disks.map((d: { bus: string; device: string }) => `${d.bus}:${d.device}`)).to.deep.equal(['virtio:vda', 'scsi:sda']);
    expect(g.disks[1].source, "a client's source is replaced by the agent's").to.equal(`sim://${g.id}/sda`);
    // A Go client decodes it.
    expect((await goClient(agent.url, 'get', g.id)).guest.id).to.equal(g.id);
    // A body of null is a create with every default (json.Marshal of a nil *Guest).
    const nullBody = await agent.request('POST', '/guests?wait=10', 'null');
    expect(nullBody.status, nullBody.text).to.equal(200);
    expect(nullBody.body).to.include({ memory: 512, cpu: 1, state: 'running' });
  });

  it('still refuses real but invalid values with a 400 naming the field', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ memory: -1 }, /^memory: memory must be at least 1 MiB/],
      [{ cpu: 1.5 }, /^cpu: cpu must be a whole number/],
      [{ disks: [{ bus: 'floppy', size: 1 }] }, /^disks\.0\.bus: bus must be one of ide, scsi, sata, virtio/],
      [{ disks: [{ bus: '', size: 0, image: '' }] }, /^disks\.0: give a size in MiB or an image/],
      [{ nics: [{ mac: 'zz', vlans: null }] }, /^nics\.0\.mac: a MAC address/],
      [{ nics: [{ vlans: [0] }] }, /^nics\.0\.vlans\.0: /],
      [{ id: 'my-vm' }, /^id: "my-vm" is not a UUID/],
      [{ type: 'xen' }, /^type: "xen" is not a guest type this agent runs/],
      [{ metadata: { a: 1 } }, /^metadata\.a: metadata values must be strings/],
    ];
    for (const [body, message] of cases) {
      const res = await agent.request('POST', '/guests', body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.message, JSON.stringify(body)).to.match(message);
    }
  });

  it('accepts no body, an empty body, null and {} on every action POST and DELETE, with or without a Content-Type', async () => {
    const created = await agent.request('POST', '/guests?wait=10&start=false', {});
    const id = created.body.id;
    const bodies: Array<[string | undefined, string | undefined]> = [];
    for (const payload of [undefined, '', 'null', '{}', ' null ']) for (const type of [undefined, 'application/json', 'text/plain']) bodies.push([payload, type]);
    const routes = ['start', 'shutdown', 'reboot', 'restart', 'poweroff', 'suspend', 'resume']
      .map((a) => ['POST', `/guests/${id}/${a}`])
      .concat([['DELETE', `/guests/${randomUUID()}`], ['POST', `/guests/${randomUUID()}/delete`], ['DELETE', `/jobs/${randomUUID()}`], ['DELETE', `/images/no-such-image`]]);
    for (const [method, path] of routes) {
      for (const [payload, type] of bodies) {
        const res = await fetch(agent.url + path, { method, body: payload, headers: type ? { 'content-type': type } : {} });
        // Accepted (202), wrong state (409), unknown guest, job or image (404), no image store (501): never a complaint about the body.
        expect([202, 404, 409, 501], `${method} ${path} body ${JSON.stringify(payload)} ${type ?? 'no Content-Type'}: ${await res.text()}`).to.include(res.status);
      }
    }
    const notJson = await fetch(`${agent.url}/guests/${id}/start`, { method: 'POST', body: 'go', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).to.equal(400);
    expect((await notJson.json()).message).to.match(/malformed JSON body/);
    const list = await agent.request('POST', `/guests/${id}/start`, [1]);
    expect(list.status).to.equal(400);
    expect(list.body.message).to.match(/an action takes no body \(or null, or \{\}\); got an array/);
    for (const path of [`/guests/${id}`, `/jobs/${randomUUID()}`, '/images/no-such-image']) {
      const res = await agent.request('DELETE', path, [1]);
      expect(res.status, `DELETE ${path} with an array body`).to.equal(400);
    }
  });

  it('removes metadata keys sent as "" or null, host and guest; a null patch changes nothing', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { metadata: { a: '1', b: '2', c: '3' } });
    const id = created.body.id;
    expect((await agent.request('PATCH', `/guests/${id}/metadata`, { a: '', b: null, d: '4' })).body).to.deep.equal({ c: '3', d: '4' });
    expect((await agent.request('PATCH', `/guests/${id}/metadata`, 'null')).body).to.deep.equal({ c: '3', d: '4' });
    await agent.request('PATCH', '/metadata', { hx: 'x', hy: 'y' });
    const host = (await agent.request('PATCH', '/metadata', { hx: '', hy: null })).body;
    expect(host).to.not.have.any.keys('hx', 'hy');
  });
});

describe('conformance: per-guest-type action plans', function () {
  this.timeout(60_000);
  const agents = agentsPerTest();

  it('without a container plan, a container create is a 501 naming the action to configure, not a VM', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    const res = await agent.request('POST', '/guests', { type: 'container' });
    expect(res.status).to.equal(501);
    expect(res.body.message).to.match(/maps no stages to "containerCreate" \(guest type "container"\); add actions\.containerCreate/);
    expect((await agent.request('GET', '/guests')).body, 'nothing was created').to.deep.equal([]);
    for (const type of ['', 'vm', 'kvm']) {
      const vm = await agent.request('POST', '/guests?wait=10', { type });
      expect(vm.status, `type "${type}": ${vm.text}`).to.equal(200);
      expect(vm.body.state, `type "${type}" runs the plain plan`).to.equal('running');
    }
  });

  it('routes a container guest to the container-prefixed actions, as mistify does', async () => {
    const config = simulatorConfig();
    // A container plan that differs from the VM one: its create leaves the guest off, and only start and delete exist.
    config.actions.containerCreate = { async: ['simulator.create'] };
    config.actions.containerStart = { async: ['simulator.start'] };
    config.actions.containerDelete = { async: ['simulator.delete'] };
    config.actions.containerCpuMetrics = { stages: ['simulator.cpuMetrics'] };
    const agent = await agents.inProcess({ config });
    const created = await agent.request('POST', '/guests?wait=10', { type: 'container', cpu: 2 });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state, 'containerCreate ran, not create (which boots)').to.equal('off');
    const id = created.body.id;
    const started = await agent.request('POST', `/guests/${id}/start?wait=10`, 'null');
    expect(started.status, started.text).to.equal(200);
    expect(started.body.state).to.equal('running');
    expect((await agent.request('GET', `/guests/${id}/metrics/cpu`)).body).to.have.length(2);
    const noPlan = await agent.request('POST', `/guests/${id}/suspend`);
    expect(noPlan.status).to.equal(501);
    expect(noPlan.body.message).to.match(/"containerSuspend" \(guest type "container"\)/);
    const nic = await agent.request('GET', `/guests/${id}/metrics/nic`);
    expect(nic.status).to.equal(501);
    expect(nic.body.message).to.match(/"containerNicMetrics"/);
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
  });
});
