/**
 * Nothing acknowledged is lost: what got a 2xx survives kill -9 of the
 * agent; queued jobs run after a restart, in order; jobs cut off mid-stage
 * are marked interrupted; SIGTERM lets running stages finish. Where a
 * process is killed or signalled the agent is a child; the rest run in-process.
 */
import { expect } from 'chai';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

describe('durability and recovery', function () {
  this.timeout(60000);
  const agents = agentsPerTest();

  it('keeps every acknowledged guest, metadata patch and job through kill -9', async () => {
    const config = simulatorConfig();
    const first = await agents.spawn({ config });
    const ids: string[] = [];
    const jobIds: string[] = [];
    // Fire writes concurrently and kill the agent as soon as the last is acknowledged.
    const creates = await Promise.all(Array.from({ length: 50 }, (_, i) => first.request('POST', '/guests', { memory: 128 + i, metadata: { n: String(i), colon: ':' + i } })));
    for (const res of creates) {
      expect(res.status).to.equal(202);
      ids.push(res.body.id);
      jobIds.push(res.headers.get('x-guest-job-id')!);
    }
    const patches = await Promise.all(ids.slice(0, 20).map((id, i) => first.request('PATCH', `/guests/${id}/metadata`, { patched: String(i) })));
    expect(patches.every((p) => p.status === 200)).to.equal(true);
    const host = await first.request('PATCH', '/metadata', { site: 'lab', tricky: ':colon', json: '{"a":1}' });
    expect(host.status).to.equal(200);
    await first.kill9();

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    const guests = (await second.request('GET', '/guests')).body as Array<{ id: string; memory: number; metadata: Record<string, string> }>;
    const byId = new Map(guests.map((g) => [g.id, g]));
    for (const [i, id] of ids.entries()) {
      const guest = byId.get(id);
      expect(guest, `guest ${i} survived`).to.not.equal(undefined);
      expect(guest!.memory).to.equal(128 + i);
      expect(guest!.metadata.colon, 'a value starting with ":" reloads unchanged').to.equal(`:${i}`);
      if (i < 20) expect(guest!.metadata.patched, `patch of guest ${i} survived`).to.equal(String(i));
    }
    for (const jobId of jobIds) {
      const job = await second.request('GET', `/jobs/${jobId}`);
      expect(job.status, `job ${jobId} survived`).to.equal(200);
    }
    expect((await second.request('GET', '/metadata')).body).to.include({ site: 'lab', tricky: ':colon', json: '{"a":1}' });
    const reloaded = await second.request('PATCH', `/guests/${ids[0]}/metadata`, { note: '::two' });
    expect(reloaded.status).to.equal(200);
  });

  it('after kill -9: queued jobs run again in order, running ones end as "interrupted by agent restart"', async () => {
    // One job slot, so the second guest's job stays queued behind the first.
    const config = simulatorConfig({ jobs: { concurrency: 1 } });
    const first = await agents.spawn({ config });
    const slow = (await first.request('POST', '/guests?wait=5&start=false', { metadata: { 'simulator.delay.start': '30000' } })).body.id;
    const other = (await first.request('POST', '/guests?wait=5&start=false', {})).body.id;
    const running = await first.request('POST', `/guests/${slow}/start`);
    const queuedDelete = await first.request('DELETE', `/guests/${slow}`);
    const queuedStart = await first.request('POST', `/guests/${other}/start`);
    const runningId = running.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await first.request('GET', `/jobs/${runningId}`)).body.Status === 'Running', 5000, 'start job running');
    expect((await first.request('GET', `/jobs/${queuedStart.headers.get('x-guest-job-id')}`)).body.Status).to.equal('Queued');
    await first.kill9();

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    const interrupted = (await second.request('GET', `/jobs/${runningId}`)).body;
    expect(interrupted).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
    const deleteJob = await waitFor(async () => {
      const j = (await second.request('GET', `/jobs/${queuedDelete.headers.get('x-guest-job-id')}`)).body;
      return j.Status === 'Complete' ? j : undefined;
    }, 10000, 'the queued delete to run after restart');
    const startJob = await waitFor(async () => {
      const j = (await second.request('GET', `/jobs/${queuedStart.headers.get('x-guest-job-id')}`)).body;
      return j.Status === 'Complete' ? j : undefined;
    }, 10000, 'the queued start to run after restart');
    expect(Date.parse(startJob.StartedAt), 'queued jobs ran in the order they were queued').to.be.at.least(Date.parse(deleteJob.StartedAt));
    expect((await second.request('GET', `/guests/${slow}`)).status).to.equal(404);
    expect((await second.request('GET', `/guests/${other}`)).body.state).to.equal('running');
  });

  it('SIGTERM lets a running stage finish, then exits 0 with its result stored', async () => {
    const config = simulatorConfig();
    const first = await agents.spawn({ config });
    const id = (await first.request('POST', '/guests?wait=5&start=false', { metadata: { 'simulator.delay.start': '1500' } })).body.id;
    const res = await first.request('POST', `/guests/${id}/start`);
    const jobId = res.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await first.request('GET', `/jobs/${jobId}`)).body.Status === 'Running', 5000, 'start running');
    const code = await first.stop();
    expect(code, 'clean exit').to.equal(0);
    const logs = first.logs.map((l) => JSON.parse(l));
    expect(logs.some((e) => e.msg === 'stopped')).to.equal(true);

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    const job = (await second.request('GET', `/jobs/${jobId}`)).body;
    expect(job.Status, 'the stage finished during the grace period').to.equal('Complete');
    expect((await second.request('GET', `/guests/${id}`)).body.state).to.equal('running');
  });

  it('keeps the SQLite state file in the data dir', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig() });
    await agent.request('PATCH', '/metadata', { k: 'v' });
    const header = (await readFile(`${agent.dataDir}/hyperkern.sqlite`)).subarray(0, 16).toString('latin1');
    expect(header).to.equal('SQLite format 3\u0000');
  });

  it('answers 200 {} on GET …/metadata of a stored guest created without metadata (Go sends null), also after a restart', async () => {
    const config = simulatorConfig();
    const first = await agents.spawn({ config });
    // A create as Go's client sends it: every field present, zero values, nil slices and map.
    const created = await first.request('POST', '/guests?wait=10&start=false', { id: '', type: '', image: '', memory: 0, cpu: 0, nics: null, disks: null, metadata: null });
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id;
    const before = await first.request('GET', `/guests/${id}/metadata`);
    expect(before.status, before.text).to.equal(200);
    expect(before.body).to.deep.equal({});
    expect(await first.stop()).to.equal(0);

    // Read back from the SQLite file by a new agent process: still a 200 with an empty map, not a 204.
    const second = await agents.spawn({ config, dataDir: first.dataDir });
    const after = await second.request('GET', `/guests/${id}/metadata`);
    expect(after.status, after.text).to.equal(200);
    expect(after.headers.get('content-type')).to.match(/application\/json/);
    expect(after.body).to.deep.equal({});
  });

  it('answers GET /jobs, /jobs/{id} and each guest\'s jobs the same after a restart', async () => {
    // Ended jobs are held as their stored text and read back on demand; the restart reloads them that way.
    const config = simulatorConfig({ simulator: { failures: { poweroff: ':colon failure' } } });
    const first = await agents.inProcess({ config });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await first.request('POST', '/guests?wait=5&start=false', {})).body.id);
    for (const id of ids) expect((await first.request('POST', `/guests/${id}/start?wait=5`)).status).to.equal(200);
    await first.request('POST', `/guests/${ids[1]}/poweroff?wait=5`);
    const answers = async (agent: typeof first) => {
      const all = (await agent.request('GET', '/jobs?limit=100')).body as Array<{ ID: string; Status: string; Message: string }>;
      const one = await Promise.all(all.map(async (j) => (await agent.request('GET', `/jobs/${j.ID}`)).body));
      const perGuest = await Promise.all(ids.map(async (id) => (await agent.request('GET', `/guests/${id}/jobs`)).body));
      return { all, one, perGuest };
    };
    const before = await answers(first);
    expect(before.all).to.have.length(7);
    expect(before.one).to.deep.equal(before.all);
    expect(before.all.find((j) => j.Status === 'Error')?.Message).to.include(':colon failure');
    await first.stop();
    const second = await agents.inProcess({ config, dataDir: first.dataDir });
    expect(await answers(second)).to.deep.equal(before);
  });

  it('prunes the job history to its bound, oldest first', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig({ jobs: { history: 5 } }) });
    const id = (await agent.request('POST', '/guests?wait=5&start=false', {})).body.id;
    const jobIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      jobIds.push((await agent.request('POST', `/guests/${id}/start?wait=5`)).headers.get('x-guest-job-id')!);
      jobIds.push((await agent.request('POST', `/guests/${id}/poweroff?wait=5`)).headers.get('x-guest-job-id')!);
    }
    const jobs = (await agent.request('GET', '/jobs?limit=100')).body;
    expect(jobs).to.have.length(5);
    expect(jobs.map((j: { ID: string }) => j.ID)).to.deep.equal(jobIds.slice(-5).reverse());
    expect((await agent.request('GET', `/jobs/${jobIds[0]}`)).status, 'the oldest job was pruned').to.equal(404);
  });

  it('a create cut off by a restart leaves the guest in error with the reason; start and delete work from there', async () => {
    const config = simulatorConfig();
    const first = await agents.spawn({ config });
    const ids: string[] = [];
    const jobIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await first.request('POST', '/guests', { metadata: { 'simulator.delay.create': '30000' } });
      expect(res.status).to.equal(202);
      ids.push(res.body.id);
      jobIds.push(res.headers.get('x-guest-job-id')!);
    }
    for (const jobId of jobIds) {
      await waitFor(async () => (await first.request('GET', `/jobs/${jobId}`)).body.Status === 'Running', 5000, 'create job running');
    }
    await first.kill9();

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    for (const [i, id] of ids.entries()) {
      const guest = (await second.request('GET', `/guests/${id}`)).body;
      expect(guest.state, `guest ${i}`).to.equal('error');
      expect(guest.metadata['hyperkern.error']).to.equal('interrupted by agent restart');
      const job = (await second.request('GET', `/jobs/${jobIds[i]}`)).body;
      expect(job).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
    }
    const refused = await second.request('POST', `/guests/${ids[0]}/shutdown`);
    expect(refused.status).to.equal(409);
    expect(refused.body.message).to.include('guest is error');

    // The client need not wait for the 30 s create delay again.
    await second.request('PATCH', `/guests/${ids[0]}/metadata`, { 'simulator.delay.create': null });
    const started = await second.request('POST', `/guests/${ids[0]}/start?wait=10`);
    expect(started.status, started.text).to.equal(200);
    expect(started.body.state).to.equal('running');
    expect(started.body.metadata, 'the reason goes once a job completes').to.not.have.property('hyperkern.error');
    const deleted = await second.request('DELETE', `/guests/${ids[1]}?wait=10`);
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await second.request('GET', `/guests/${ids[1]}`)).status).to.equal(404);
  });

  it('an agent that cannot listen (port taken) recovers nothing: the next agent finds the cut-off job still to mark', async () => {
    const config = simulatorConfig();
    const first = await agents.spawn({ config });
    const created = await first.request('POST', '/guests', { metadata: { 'simulator.delay.create': '30000' } });
    expect(created.status).to.equal(202);
    const createJob = created.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await first.request('GET', `/jobs/${createJob}`)).body.Status === 'Running', 5000, 'create job running');
    await first.kill9();

    // As `npm start` run again while something holds the port: it exits before touching any job.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const refused = await agents.spawn({ config, dataDir: first.dataDir, args: ['--listen', `127.0.0.1:${port}`] }).catch((e: Error) => e);
      expect(String(refused)).to.match(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
      expect(String(refused), 'no recovery before the socket listens').to.not.match(/kernel ready/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }

    const next = await agents.spawn({ config, dataDir: first.dataDir });
    const ready = next.logs.map((l) => JSON.parse(l)).find((e) => e.msg === 'kernel ready');
    expect(ready, 'the running job was still Running on disk: only this agent marked it').to.include({ interrupted: 1 });
    expect((await next.request('GET', `/jobs/${createJob}`)).body).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
  });

  it('names the state file when it is corrupt', async () => {
    const first = await agents.spawn({ config: simulatorConfig() });
    await first.kill9();
    const file = path.join(first.dataDir, 'hyperkern.sqlite');
    await rm(`${file}-wal`, { force: true });
    await rm(`${file}-shm`, { force: true });
    await writeFile(file, 'this is not a SQLite database, it was overwritten by accident '.repeat(100));
    const refused = await agents.spawn({ config: simulatorConfig(), dataDir: first.dataDir }).then(
      () => '',
      (error: Error) => error.message,
    );
    expect(refused).to.include(file);
    expect(refused).to.include(`hyperkern: cannot open state file ${file}: SQLITE_NOTADB`);
  });
});
