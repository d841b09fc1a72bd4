/**
 * The conformance flows: every endpoint a mistify client uses, once as a Go
 * client sends it (test/go-client: encoding/json bodies with every zero
 * value, `null` action bodies, responses decoded into the Go types) and
 * once with the bodies a JavaScript client sends (fields left out, `{}` or
 * no body at all). The same flows run on the simulator (fast suite), QEMU
 * and libvirt; a backend passes how long its jobs may take and how to wait
 * until a booted guest's OS listens (soft reboot and shutdown need it).
 */
import { expect } from 'chai';
import { stat } from 'node:fs/promises';
import type { TestAgent } from './agent.js';
import { sleep, waitForConsole } from './backend-testing.js';
import { goClient } from './go-client.js';

export interface FlowBackend {
  /** What the client puts in the guest besides memory, cpu, one disk and one NIC (e.g. boot metadata). */
  guest: { metadata?: Record<string, string>; nics?: object[]; disks?: object[]; memory?: number };
  /** Seconds any one job may take. */
  jobTimeoutSeconds: number;
  /** Resolves once the guest's OS is up after a boot (create, start, reboot, restart). */
  booted(guestId: string): Promise<void>;
}

/** Actions in an order every state allows, with the state each ends in. */
const ACTIONS: Array<[action: string, state: string, boots: boolean]> = [
  ['suspend', 'suspended', false],
  ['start', 'running', false],
  ['restart', 'running', true],
  ['reboot', 'running', true],
  ['shutdown', 'shutdown', false],
  ['start', 'running', true],
  ['poweroff', 'off', false],
];

/**
 * The Go client, step by step; every answer it decoded is checked here too.
 * `deleteUrl`: where the final DELETE (and its job polling) goes, when not
 * to agent.url (the Prism test sends it past the proxy: see there why).
 */
export async function goFlow(agent: TestAgent, backend: FlowBackend, deleteUrl = agent.url): Promise<void> {
  const t = String(backend.jobTimeoutSeconds);
  const host = await goClient(agent.url, 'host-metadata', JSON.stringify({ 'go.rack': 'r1', 'go.zone': 'z1' }));
  expect(host.patched).to.include({ 'go.rack': 'r1', 'go.zone': 'z1' });
  const removedHost = await goClient(agent.url, 'host-metadata', JSON.stringify({ 'go.zone': '' }));
  expect(removedHost.read, '"" removes a host metadata key').to.include({ 'go.rack': 'r1' }).and.not.have.property('go.zone');

  const guest = { memory: 128, cpu: 1, disks: [{ size: 64 }], nics: [{}], ...backend.guest, metadata: { owner: 'go', ...backend.guest.metadata } };
  const created = await goClient(agent.url, 'create', t, JSON.stringify(guest));
  // What went on the wire is what encoding/json makes of the Go types.
  const wire = JSON.parse(created.wire);
  expect(wire.id, 'Go sends the empty id').to.equal('');
  expect(wire.disks[0]).to.include({ bus: '', device: '', volume: '', image: '', source: '' });
  expect(wire.nics[0]).to.include({ network: wire.nics[0].network, model: '', address: '', netmask: '', gateway: '' });
  expect(wire.nics[0].vlans, 'a nil Go slice is null').to.equal(null);
  expect(created.created.state).to.equal('creating');
  expect(created.job, created.job.Message).to.include({ Action: 'create', Status: 'Complete', GuestID: created.created.id });
  const id: string = created.guest.id;
  expect(created.guest.state, 'create boots the guest').to.equal('running');
  expect(created.guest.disks[0]).to.include({ bus: 'virtio', device: 'vda' });
  expect(created.guest.nics[0].model, '"" model is the default').to.equal('virtio');
  expect(created.guest.nics[0].mac).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  await backend.booted(id);

  const listed = await goClient(agent.url, 'list');
  expect(listed.guests.map((g: { id: string }) => g.id)).to.include(id);
  expect((await goClient(agent.url, 'get', id)).guest.id).to.equal(id);

  const set = await goClient(agent.url, 'guest-metadata', id, JSON.stringify({ a: '1', b: '2' }));
  expect(set.patched).to.include({ a: '1', b: '2', owner: 'go' });
  const removed = await goClient(agent.url, 'guest-metadata', id, JSON.stringify({ a: '' }));
  expect(removed.read, '"" removes a guest metadata key').to.include({ b: '2' }).and.not.have.property('a');

  const metrics = await goClient(agent.url, 'metrics', id);
  expect(metrics.cpu, 'one entry per vCPU').to.have.length(created.guest.cpu);
  expect(metrics.disk).to.have.property('vda');
  expect(metrics.nic).to.have.property('net0');

  for (const [action, state, boots] of ACTIONS) {
    const done = await goClient(agent.url, 'act', id, action, t);
    expect(done.job, `${action}: ${done.job.Message}`).to.include({ Action: action, Status: 'Complete' });
    expect(done.guest.state, `state after ${action}`).to.equal(state);
    if (boots) await backend.booted(id);
  }
  const jobs = await goClient(agent.url, 'jobs', id);
  expect(jobs.guestJobs.map((j: { Action: string }) => j.Action)).to.deep.equal([...ACTIONS.map(([a]) => a).reverse(), 'create']);
  expect(jobs.jobs.length).to.be.greaterThan(0);
  const deleted = await goClient(deleteUrl, 'act', id, 'delete', t);
  expect(deleted.job, deleted.job.Message).to.include({ Action: 'delete', Status: 'Complete' });
  expect(deleted.status, 'gone after its delete job').to.equal(404);
  await goClient(agent.url, 'host-metadata', JSON.stringify({ 'go.rack': '' }));
}

/** Raw fetch, for bodies agent.request cannot send (none at all, or no Content-Type). */
async function send(agent: TestAgent, method: string, path: string, body?: string, contentType?: string) {
  const res = await fetch(agent.url + path, { method, body, headers: contentType ? { 'content-type': contentType } : {} });
  const text = await res.text();
  return { status: res.status, jobId: res.headers.get('x-guest-job-id'), body: text ? JSON.parse(text) : undefined, text };
}

/** The same flow with JavaScript-shaped bodies; the Go client then decodes what the agent holds. */
export async function jsFlow(agent: TestAgent, backend: FlowBackend): Promise<void> {
  const wait = `wait=${backend.jobTimeoutSeconds}`;
  const body = { memory: 128, cpu: 1, disks: [{ size: 64 }], nics: [{}], ...backend.guest, metadata: { owner: 'js', ...backend.guest.metadata } };
  const created = await send(agent, 'POST', `/guests?${wait}`, JSON.stringify(body), 'application/json');
  expect(created.status, created.text).to.equal(200);
  expect(created.body.state).to.equal('running');
  const id: string = created.body.id;
  await backend.booted(id);
  const patched = await send(agent, 'PATCH', `/guests/${id}/metadata`, JSON.stringify({ a: '1', owner: null }), 'application/json');
  expect(patched.body).to.include({ a: '1' }).and.not.have.property('owner');
  for (const type of ['cpu', 'nic', 'disk']) expect((await send(agent, 'GET', `/guests/${id}/metrics/${type}`)).status, type).to.equal(200);
  // Each action with another of the bodies JavaScript clients send.
  const bodies: Array<[string | undefined, string | undefined]> = [
    [undefined, undefined],
    ['{}', 'application/json'],
    ['', undefined],
    ['{}', undefined],
    ['null', undefined],
    ['', 'application/json'],
    [undefined, 'application/json'],
  ];
  for (const [i, [action, state, boots]] of ACTIONS.entries()) {
    const [payload, type] = bodies[i % bodies.length];
    const res = await send(agent, 'POST', `/guests/${id}/${action}?${wait}`, payload, type);
    expect(res.status, `${action} with body ${JSON.stringify(payload)} (${type ?? 'no Content-Type'}): ${res.text}`).to.equal(200);
    expect(res.body.state).to.equal(state);
    if (boots) await backend.booted(id);
  }
  // What the agent holds decodes into the Go types.
  expect((await goClient(agent.url, 'get', id)).guest.metadata).to.include({ a: '1' });
  const gone = await send(agent, 'DELETE', `/guests/${id}?${wait}`);
  expect(gone.status, gone.text).to.equal(200);
  expect((await send(agent, 'GET', `/guests/${id}`)).status).to.equal(404);
}

/**
 * A `booted` hook for backends with a serial console log: waits for the
 * tiny guest's init line written after the previous boot (a new QEMU
 * process may start a fresh log), then gives acpid a moment to listen.
 */
export function consoleBootWatcher(consoleLog: (guestId: string) => string, initLine: string, timeoutMs: number): (guestId: string) => Promise<void> {
  const offsets = new Map<string, number>();
  return async (guestId) => {
    const file = consoleLog(guestId);
    const sizeNow = async () => (await stat(file).catch(() => ({ size: 0 }))).size;
    let from = offsets.get(guestId) ?? 0;
    if ((await sizeNow()) < from) from = 0;
    await waitForConsole(file, initLine, timeoutMs, from);
    offsets.set(guestId, await sizeNow());
    await sleep(500);
  };
}
