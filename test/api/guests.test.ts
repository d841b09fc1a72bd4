/**
 * The seed API's guest, metadata and job endpoints against the real kernel
 * (in-process, SQLite in a temp dir, HTTP on loopback, simulator backend).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('API: guests, metadata and jobs', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));

  // Guests left off (?start=false), so tests can start them themselves.
  async function createGuest(body: object = { memory: 256, cpu: 2, disks: [{ size: 64 }], nics: [{ network: 'br0' }] }) {
    const res = await agent.request('POST', '/guests?wait=10&start=false', body);
    expect(res.status, `create answered ${res.status}: ${res.text}`).to.equal(200);
    return res.body;
  }

  describe('POST /guests', () => {
    it('answers 202 with the new guest and the id of its create job, which completes with the guest running', async () => {
      const res = await agent.request('POST', '/guests', { memory: 256, cpu: 2, disks: [{ size: 64 }, { bus: 'scsi', size: 10 }], nics: [{ network: 'br0' }, {}], metadata: { owner: 'team-a' } });
      expect(res.status).to.equal(202);
      const guest = res.body;
      expect(guest.id).to.match(UUID);
      expect(guest.state).to.equal('creating');
      expect(guest.memory).to.equal(256);
      expect(guest.cpu).to.equal(2);
      expect(guest.metadata).to.deep.equal({ owner: 'team-a' });
      expect(guest.disks.map((d: { device: string }) => d.device)).to.deep.equal(['vda', 'sda']);
      expect(guest.nics.map((n: { name: string }) => n.name)).to.deep.equal(['net0', 'net1']);
      for (const nic of guest.nics) {
        expect(nic.mac, 'agent assigns a locally administered unicast MAC').to.match(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
        expect(nic.device.length, 'tap names fit IFNAMSIZ').to.be.at.most(15);
      }
      const jobId = res.headers.get('x-guest-job-id');
      expect(jobId).to.match(UUID);
      const job = await waitFor(async () => {
        const j = (await agent.request('GET', `/jobs/${jobId}`)).body;
        return j.Status === 'Complete' ? j : undefined;
      }, 5000, 'the create job to complete');
      expect(job).to.include({ GuestID: guest.id, Action: 'create', Status: 'Complete' });
      const after = await agent.request('GET', `/guests/${guest.id}`);
      expect(after.body.state, 'create boots the guest, as mistify does').to.equal('running');
    });

    it('?start=false leaves the new guest off; another start value is a 400', async () => {
      const res = await agent.request('POST', '/guests?wait=10&start=false', {});
      expect(res.status, res.text).to.equal(200);
      expect(res.body.state).to.equal('off');
      const jobs = (await agent.request('GET', `/guests/${res.body.id}/jobs`)).body;
      expect(jobs.map((j: { Action: string; Status: string }) => `${j.Action}:${j.Status}`)).to.deep.equal(['create:Complete']);
      const bad = await agent.request('POST', '/guests?start=maybe', {});
      expect(bad.status).to.equal(400);
      expect(bad.body.message).to.match(/^start must be true .* or false/);
    });

    it('fills defaults for an empty body (mistify sample request is {})', async () => {
      const res = await agent.request('POST', '/guests', {});
      expect(res.status).to.equal(202);
      expect(res.body).to.include({ memory: 512, cpu: 1, type: '', vnc: 0 });
      expect(res.body.nics).to.deep.equal([]);
      expect(res.body.disks).to.deep.equal([]);
    });

    it('accepts a client-chosen new UUID once, and answers a retry with the same guest and job', async () => {
      const id = randomUUID();
      const first = await agent.request('POST', '/guests', { id, memory: 128 });
      expect(first.status).to.equal(202);
      expect(first.body.id).to.equal(id);
      const retry = await agent.request('POST', '/guests', { id, memory: 128 });
      expect(retry.status, 'a retry does not create a second guest').to.equal(200);
      expect(retry.body.id).to.equal(id);
      expect(retry.headers.get('x-guest-job-id')).to.equal(first.headers.get('x-guest-job-id'));
      const all = (await agent.request('GET', '/guests')).body.filter((g: { id: string }) => g.id === id);
      expect(all).to.have.length(1);
    });

    it('creates one guest when two requests with the same new id race', async () => {
      const id = randomUUID();
      const answers = await Promise.all([agent.request('POST', '/guests', { id }), agent.request('POST', '/guests', { id })]);
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 202), `exactly one create accepted (statuses ${statuses})`).to.have.length(1);
      const other = statuses.find((s) => s !== 202);
      expect([200, 409], 'the other request is told the guest exists').to.include(other);
      const all = (await agent.request('GET', '/guests')).body.filter((g: { id: string }) => g.id === id);
      expect(all).to.have.length(1);
      const jobs = (await agent.request('GET', `/guests/${id}/jobs`)).body;
      expect(jobs.filter((j: { Action: string }) => j.Action === 'create'), 'one create job').to.have.length(1);
    });

    it('refuses an id that is not a UUID', async () => {
      const res = await agent.request('POST', '/guests', { id: 'my-vm' });
      expect(res.status).to.equal(400);
      expect(res.body.message).to.match(/id: "my-vm" is not a UUID/);
    });

    it('reads a body sent as form-encoded by curl -d as JSON', async () => {
      const res = await fetch(`${agent.url}/guests`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"memory":300}' });
      expect(res.status).to.equal(202);
      expect((await res.json()).memory).to.equal(300);
    });
  });

  describe('POST /guests?start=false on a config whose create does not boot', () => {
    // As config/fleet-example.json: create runs only the backend's create stage.
    const noBoot = suiteAgent(() => {
      const config = simulatorConfig();
      config.actions.create = { async: ['simulator.create'] };
      return { config };
    });
    it('runs the pipeline as configured, completes with the guest off, and says start=false changed nothing', async () => {
      for (const query of ['?wait=10&start=false', '?wait=10']) {
        const res = await noBoot.request('POST', `/guests${query}`, {});
        expect(res.status, res.text).to.equal(200);
        expect(res.body.state, query).to.equal('off');
        expect(res.headers.get('x-guest-job-status')).to.equal('Complete');
      }
      const said = noBoot.logs.map((l) => JSON.parse(l)).filter((e) => /^start=false changes nothing/.test(e.msg));
      expect(said, 'one log line, for the create that asked for start=false').to.have.length(1);
      expect(said[0].stages).to.deep.equal(['simulator.create']);
    });
  });

  describe('GET /guests and /guests/{id}', () => {
    it('lists every guest and returns one by id', async () => {
      const guest = await createGuest();
      const list = await agent.request('GET', '/guests');
      expect(list.status).to.equal(200);
      expect(list.body).to.be.an('array');
      expect(list.body.map((g: { id: string }) => g.id)).to.include(guest.id);
      const one = await agent.request('GET', `/guests/${guest.id}`);
      expect(one.status).to.equal(200);
      expect(one.body).to.deep.equal(guest);
      expect(one.headers.get('content-type')).to.match(/application\/json/);
    });

    it('answers each guest as the list does, also after one changed since the list was made', async () => {
      // The registry keeps each guest's bytes as a view into the list it last sent.
      const [a, b] = [await createGuest(), await createGuest()];
      const byId = async () => new Map(((await agent.request('GET', '/guests')).body as Array<{ id: string }>).map((g) => [g.id, g]));
      const listed = await byId();
      expect((await agent.request('GET', `/guests/${a.id}`)).body).to.deep.equal(listed.get(a.id));
      expect((await agent.request('PATCH', `/guests/${a.id}/metadata`, { changed: 'yes' })).status).to.equal(200);
      const one = (await agent.request('GET', `/guests/${a.id}`)).body;
      expect(one.metadata).to.include({ changed: 'yes' });
      expect((await agent.request('GET', `/guests/${b.id}`)).body).to.deep.equal(listed.get(b.id));
      const relisted = await byId();
      expect(relisted.get(a.id)).to.deep.equal(one);
      expect((await agent.request('GET', `/guests/${b.id}`)).body).to.deep.equal(relisted.get(b.id));
    });

    it('answers 404 with a JSON error for an unknown guest', async () => {
      const res = await agent.request('GET', `/guests/${randomUUID()}`);
      expect(res.status).to.equal(404);
      expect(res.body).to.include({ code: 404, error: 'HK_ERR_GUEST_NOT_FOUND' });
      expect(res.body.message).to.match(/no guest with id/);
    });
  });

  describe('guest metadata', () => {
    it('GET returns it; PATCH merges, null removes, and answers the result', async () => {
      const guest = await createGuest({ metadata: { a: '1', b: '2' } });
      expect((await agent.request('GET', `/guests/${guest.id}/metadata`)).body).to.deep.equal({ a: '1', b: '2' });
      const patched = await agent.request('PATCH', `/guests/${guest.id}/metadata`, { b: null, c: '3' });
      expect(patched.status).to.equal(200);
      expect(patched.body).to.deep.equal({ a: '1', c: '3' });
      expect((await agent.request('GET', `/guests/${guest.id}`)).body.metadata).to.deep.equal({ a: '1', c: '3' });
    });

    it('refuses non-string values with 400 naming the key', async () => {
      const guest = await createGuest();
      for (const bad of [{ n: 1 }, { o: { x: 'y' } }, { t: true }, { l: ['a'] }]) {
        const res = await agent.request('PATCH', `/guests/${guest.id}/metadata`, bad);
        expect(res.status, JSON.stringify(bad)).to.equal(400);
        expect(res.body.message).to.include(`"${Object.keys(bad)[0]}"`);
      }
      const arr = await agent.request('PATCH', `/guests/${guest.id}/metadata`, ['a']);
      expect(arr.status).to.equal(400);
    });

    it('404s for an unknown guest', async () => {
      expect((await agent.request('GET', `/guests/${randomUUID()}/metadata`)).status).to.equal(404);
      expect((await agent.request('PATCH', `/guests/${randomUUID()}/metadata`, { a: 'b' })).status).to.equal(404);
    });

    it('loses none of 100 parallel PATCHes of distinct keys', async () => {
      const guest = await createGuest();
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => agent.request('PATCH', `/guests/${guest.id}/metadata`, { [`k${i}`]: `v${i}` })),
      );
      expect(results.every((r) => r.status === 200), 'every PATCH answered 200').to.equal(true);
      const metadata = (await agent.request('GET', `/guests/${guest.id}/metadata`)).body;
      for (let i = 0; i < 100; i++) expect(metadata[`k${i}`], `key k${i}`).to.equal(`v${i}`);
    });
  });

  describe('host metadata', () => {
    it('GET /metadata starts empty-or-object; PATCH merges and removes', async () => {
      const initial = await agent.request('GET', '/metadata');
      expect(initial.status).to.equal(200);
      expect(initial.body).to.be.an('object');
      const patched = await agent.request('PATCH', '/metadata', { rack: 'r12', zone: 'z1' });
      expect(patched.body).to.include({ rack: 'r12', zone: 'z1' });
      const removed = await agent.request('PATCH', '/metadata', { zone: null });
      expect(removed.body).to.include({ rack: 'r12' });
      expect(removed.body).to.not.have.property('zone');
      expect((await agent.request('PATCH', '/metadata', { rack: 5 })).status).to.equal(400);
    });

    it('loses none of 100 parallel PATCHes of distinct keys', async () => {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => agent.request('PATCH', '/metadata', { [`h${i}`]: String(i) })));
      expect(results.map((r) => r.status)).to.deep.equal(Array(100).fill(200));
      const metadata = (await agent.request('GET', '/metadata')).body;
      for (let i = 0; i < 100; i++) expect(metadata[`h${i}`], `key h${i}`).to.equal(String(i));
    });
  });

  describe('jobs', () => {
    it('GET /jobs lists newest first and honours limit; GET /jobs/{id} returns one', async () => {
      const guest = await createGuest();
      const start = await agent.request('POST', `/guests/${guest.id}/start?wait=10`);
      expect(start.status).to.equal(200);
      const jobs = await agent.request('GET', '/jobs?limit=2');
      expect(jobs.status).to.equal(200);
      expect(jobs.body).to.have.length(2);
      expect(jobs.body[0]).to.include({ GuestID: guest.id, Action: 'start', Status: 'Complete' });
      for (const key of ['ID', 'GuestID', 'Action', 'QueuedAt', 'StartedAt', 'UpdatedAt', 'Status', 'Message']) {
        expect(jobs.body[0], `job field ${key}`).to.have.property(key);
      }
      const one = await agent.request('GET', `/jobs/${jobs.body[0].ID}`);
      expect(one.body).to.deep.equal(jobs.body[0]);
      expect((await agent.request('GET', '/jobs?limit=0')).status).to.equal(400);
      expect((await agent.request('GET', `/jobs/${randomUUID()}`)).status).to.equal(404);
    });

    it("GET /guests/{id}/jobs lists that guest's jobs; /guests/{id}/jobs/{jobID} returns one of them", async () => {
      const guest = await createGuest();
      const other = await createGuest();
      await agent.request('POST', `/guests/${guest.id}/start?wait=10`);
      const jobs = (await agent.request('GET', `/guests/${guest.id}/jobs`)).body;
      expect(jobs.map((j: { Action: string }) => j.Action)).to.deep.equal(['start', 'create']);
      expect(jobs.every((j: { GuestID: string }) => j.GuestID === guest.id)).to.equal(true);
      const one = await agent.request('GET', `/guests/${guest.id}/jobs/${jobs[0].ID}`);
      expect(one.body).to.deep.equal(jobs[0]);
      const otherJobs = (await agent.request('GET', `/guests/${other.id}/jobs`)).body;
      const foreign = await agent.request('GET', `/guests/${guest.id}/jobs/${otherJobs[0].ID}`);
      expect(foreign.status, "another guest's job is not found under this guest").to.equal(404);
      expect((await agent.request('GET', `/guests/${randomUUID()}/jobs`)).status).to.equal(404);
    });
  });

  describe('DELETE /guests/{id}', () => {
    it('removes the guest once its delete job completes', async () => {
      const guest = await createGuest();
      const res = await agent.request('DELETE', `/guests/${guest.id}`);
      expect(res.status).to.equal(202);
      const jobId = res.headers.get('x-guest-job-id')!;
      await waitFor(async () => (await agent.request('GET', `/jobs/${jobId}`)).body.Status === 'Complete', 5000, 'delete job');
      expect((await agent.request('GET', `/guests/${guest.id}`)).status).to.equal(404);
    });

    it('with ?wait answers 200 with the last state of the deleted guest', async () => {
      const guest = await createGuest();
      const res = await agent.request('DELETE', `/guests/${guest.id}?wait=10`);
      expect(res.status).to.equal(200);
      expect(res.body.id).to.equal(guest.id);
      expect(res.headers.get('x-guest-job-status')).to.equal('Complete');
    });

    it('POST /guests/{id}/delete is an alias (mistify)', async () => {
      const guest = await createGuest();
      const res = await agent.request('POST', `/guests/${guest.id}/delete?wait=10`);
      expect(res.status).to.equal(200);
      expect((await agent.request('GET', `/guests/${guest.id}`)).status).to.equal(404);
    });

    it('a failed delete leaves the guest, with the error in the job', async () => {
      const guest = await createGuest({ metadata: { 'simulator.fail': 'delete' } });
      const res = await agent.request('DELETE', `/guests/${guest.id}`);
      const jobId = res.headers.get('x-guest-job-id')!;
      const job = await waitFor(async () => {
        const j = (await agent.request('GET', `/jobs/${jobId}`)).body;
        return j.Status === 'Error' ? j : undefined;
      }, 5000, 'the delete job to fail');
      expect(job.Message).to.match(/stage simulator\.delete failed: simulated failure of delete/);
      expect((await agent.request('GET', `/guests/${guest.id}`)).status, 'guest still registered').to.equal(200);
    });
  });

  describe('GET /health', () => {
    it('reports liveness and each plugin', async () => {
      const res = await agent.request('GET', '/health');
      expect(res.status).to.equal(200);
      expect(res.body.status).to.equal('ok');
      expect(res.body.plugins).to.have.keys('guard', 'simulator', 'images');
      expect(res.body.plugins.simulator.healthy).to.equal(true);
      expect(res.body.jobs).to.have.keys('queued', 'running', 'complete', 'failed');
    });
  });
});
