/**
 * The snapshot API through the real kernel (in-process: config, SQLite,
 * HTTP on loopback) on the simulator backend: routes for a guest and one disk, Go-
 * shaped bodies (every field present, "", false, null), jobs on the guest's
 * queue, state rules checked at the request and again when the job starts,
 * names, 404s, rollback with and without destroyMoreRecent, failure
 * injection, and downloads with Content-Length, chunked, and cut off.
 */
import { underLoad } from '../support/load-budget.js';
import { expect } from 'chai';
import { waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { checkResponse } from '../support/contract.js';

const DOWNLOAD_BYTES = 256 * 1024;
/** A Go client's SnapshotRequest with nothing set. */
const GO_EMPTY = { id: '', dest: '', recursive: false, destroyMoreRecent: false };

describe('snapshot API', function () {
  this.timeout(60_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ simulator: { snapshotDownloadBytes: DOWNLOAD_BYTES } }) }));
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(agent.logs.slice(-20).join('\n'));
  });

  /** A guest with two disks (vda, vdb), left off. */
  async function newGuest(metadata: Record<string, string> = {}, disks = 2): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=10&start=false', {
      id: '', memory: 128, cpu: 1, type: '', image: '', nics: null, metadata,
      disks: Array.from({ length: disks }, () => ({ bus: '', device: '', size: 16, volume: '', image: '', source: '' })),
    });
    expect(res.status, res.text).to.equal(200);
    return res.body.id;
  }
  const snap = (id: string, rest = '') => `/guests/${id}/snapshots${rest}`;
  const diskSnap = (id: string, disk: string, rest = '') => `/guests/${id}/disks/${disk}/snapshots${rest}`;

  /** The bytes of a download, with its headers; rejects when the transfer is cut off. */
  async function download(path: string): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
    const res = await fetch(agent.url + path);
    const bytes = Buffer.from(await res.arrayBuffer());
    await checkResponse({ method: 'GET', url: agent.url + path, status: res.status, headers: res.headers, body: undefined });
    return { status: res.status, headers: res.headers, bytes };
  }

  it('cancels snapshot jobs through DELETE /jobs/{id} as any job: a queued one at once (its name free again), a running one through its AbortSignal', async () => {
    const id = await newGuest({ 'simulator.delay.createSnapshot': '30000' });
    const running = await agent.request('POST', `${snap(id)}?wait=0`, { ...GO_EMPTY, dest: 'slow' });
    expect(running.status, running.text).to.equal(202);
    const runningId = running.headers.get('x-guest-job-id')!;
    const queued = await agent.request('POST', `${snap(id)}?wait=0`, { ...GO_EMPTY, dest: 'later' });
    expect(queued.status, queued.text).to.equal(202);
    const queuedId = queued.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await agent.request('GET', `/jobs/${runningId}`)).body.Status === 'Running', 10_000, 'the first snapshot job to run');
    expect((await agent.request('GET', `/jobs/${queuedId}`)).body).to.include({ Status: 'Queued', QueuePosition: 1 });

    const dropped = await agent.request('DELETE', `/jobs/${queuedId}`);
    expect(dropped.status, dropped.text).to.equal(200);
    expect(dropped.body).to.include({ Status: 'Error', Message: 'cancelled' });
    const stopped = await agent.request('DELETE', `/guests/${id}/jobs/${runningId}?wait=10`);
    expect(stopped.status, stopped.text).to.equal(200);
    expect(stopped.body).to.include({ Status: 'Error', Message: 'cancelled' });
    expect((await agent.request('GET', snap(id))).body, 'neither was taken').to.deep.equal([]);
    expect((await agent.request('PATCH', `/guests/${id}/metadata`, { 'simulator.delay.createSnapshot': '' })).status).to.equal(200);
    const again = await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'later' });
    expect(again.status, again.text).to.equal(200);
  });

  it('takes a guest-wide snapshot from a Go-shaped body as a job on the guest, named snap-<unix seconds>', async () => {
    const id = await newGuest();
    expect((await agent.request('GET', snap(id))).body).to.deep.equal([]);
    const before = Math.floor(Date.now() / 1000);
    const res = await agent.request('POST', `${snap(id)}?wait=0`, GO_EMPTY);
    expect(res.status, res.text).to.equal(202);
    const jobId = res.headers.get('x-guest-job-id')!;
    expect(res.body).to.have.length(1);
    const [taken] = res.body;
    expect(taken.id).to.match(/^snap-\d+$/);
    expect(Number(taken.id.slice(5))).to.be.within(before, before + 5);
    expect(taken.size).to.equal(0);
    const job = await waitFor(async () => {
      const j = await agent.request('GET', `/jobs/${jobId}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 10_000, 'the snapshot job to end');
    expect(job).to.include({ Action: 'createSnapshot', GuestID: id, Status: 'Complete' });
    expect(job.Message).to.include(taken.id);
    // On the guest's own job list, like its lifecycle jobs.
    expect((await agent.request('GET', `/guests/${id}/jobs`)).body.map((j: { ID: string }) => j.ID)).to.include(jobId);
    // A guest-wide snapshot is one of every disk.
    for (const disk of ['vda', 'vdb']) {
      expect((await agent.request('GET', diskSnap(id, disk))).body.map((s: { id: string }) => s.id)).to.deep.equal([taken.id]);
    }
    const got = await agent.request('GET', snap(id, `/${taken.id}`));
    expect(got.status).to.equal(200);
    expect(got.body, "mistify's SnapshotResponse array").to.deep.equal([{ id: taken.id, size: 0 }]);
  });

  it('answers as mistify-agent did without ?wait: 200 and [Snapshot] once the job is done, for create, rollback and delete', async () => {
    const id = await newGuest({}, 1);
    const created = await agent.request('POST', snap(id), { ...GO_EMPTY, dest: 'm1' });
    expect(created.status, created.text).to.equal(200);
    expect(created.headers.get('x-guest-job-status')).to.equal('Complete');
    expect(created.body).to.deep.equal([{ id: 'm1', size: 0 }]);
    expect((await agent.request('GET', `/jobs/${created.headers.get('x-guest-job-id')}`)).body.Status).to.equal('Complete');
    const rolled = await agent.request('POST', snap(id, '/m1/rollback'), 'null');
    expect(rolled.status, rolled.text).to.equal(200);
    expect(rolled.body).to.deep.equal([{ id: 'm1', size: 0 }]);
    const deleted = await agent.request('DELETE', snap(id, '/m1'), 'null');
    expect(deleted.status, deleted.text).to.equal(200);
    expect(deleted.body).to.deep.equal([{ id: 'm1', size: 0 }]);
    expect((await agent.request('GET', snap(id))).body).to.deep.equal([]);
  });

  it('answers ?wait with the snapshot; a null body, an absent one and a taken name', async () => {
    const id = await newGuest();
    await agent.request('POST', `/guests/${id}/start?wait=10`);
    const named = await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'first', recursive: true });
    expect(named.status, named.text).to.equal(200);
    expect(named.headers.get('x-guest-job-status')).to.equal('Complete');
    expect(named.body.map((s: { id: string }) => s.id)).to.deep.equal(['first']);
    const fromNull = await agent.request('POST', `${diskSnap(id, 'vdb')}?wait=10`, 'null');
    expect(fromNull.status, fromNull.text).to.equal(200);
    expect(fromNull.body[0].id).to.match(/^snap-\d+$/);
    const absent = await agent.request('POST', `${diskSnap(await newGuest(), 'vda')}?wait=10`);
    expect(absent.status, absent.text).to.equal(200);
    expect(absent.body[0].id).to.match(/^snap-\d+$/);
    const taken = await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'first' });
    expect(taken.status).to.equal(409);
    expect(taken.body.message).to.include('already has a snapshot "first"');
    // A disk snapshot is not a guest-wide one: only vdb has it.
    expect((await agent.request('GET', snap(id))).body.map((s: { id: string }) => s.id)).to.deep.equal(['first']);
    expect((await agent.request('GET', diskSnap(id, 'vdb'))).body.map((s: { id: string }) => s.id)).to.deep.equal(['first', fromNull.body[0].id]);
  });

  it('refuses bad names, unknown guests, disks and snapshots with errors that say which', async () => {
    const id = await newGuest();
    const badDest = await agent.request('POST', snap(id), { ...GO_EMPTY, dest: '../etc' });
    expect(badDest.status).to.equal(400);
    expect(badDest.body.message).to.match(/^dest: /);
    const badType = await agent.request('POST', snap(id), { ...GO_EMPTY, destroyMoreRecent: 'yes' });
    expect(badType.status).to.equal(400);
    expect(badType.body.message).to.match(/^destroyMoreRecent: /);
    const notObject = await agent.request('POST', snap(id), '[1]');
    expect(notObject.status).to.equal(400);
    const badName = await agent.request('GET', snap(id, '/bad%20name'));
    expect(badName.status).to.equal(400);
    expect(badName.body.message).to.match(/^name: /);
    const noGuest = await agent.request('GET', snap('no-such-guest'));
    expect(noGuest.status).to.equal(404);
    expect(noGuest.body.error).to.equal('HK_ERR_GUEST_NOT_FOUND');
    const noDisk = await agent.request('POST', diskSnap(id, 'vdz'), GO_EMPTY);
    expect(noDisk.status).to.equal(404);
    expect(noDisk.body.error).to.equal('HK_ERR_DISK_NOT_FOUND');
    expect(noDisk.body.message).to.include('vda, vdb');
    for (const [method, path] of [
      ['GET', snap(id, '/nope')],
      ['DELETE', snap(id, '/nope')],
      ['POST', snap(id, '/nope/rollback')],
      ['GET', snap(id, '/nope/download')],
      ['GET', diskSnap(id, 'vda', '/nope')],
    ]) {
      const res = await agent.request(method, path, method === 'POST' ? GO_EMPTY : undefined);
      expect(res.status, `${method} ${path}`).to.equal(404);
      expect(res.body.error, `${method} ${path}`).to.equal('HK_ERR_SNAPSHOT_NOT_FOUND');
    }
  });

  it('rolls back only an off guest; later snapshots need destroyMoreRecent; what was written since is gone', async () => {
    const id = await newGuest({}, 1);
    const take = async (dest: string) => {
      const res = await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest });
      expect(res.status, res.text).to.equal(200);
    };
    await take('clean');
    const clean = await download(snap(id, '/clean/download'));
    await agent.request('POST', `/guests/${id}/start?wait=10`);
    // The simulated guest writes while it runs.
    await new Promise((r) => setTimeout(r, 1100));
    await take('later');
    const running = await agent.request('POST', `${snap(id, '/clean/rollback')}?wait=10`, { ...GO_EMPTY, destroyMoreRecent: true });
    expect(running.status).to.equal(409);
    expect(running.body.message).to.include('rollbackSnapshot needs it off, shutdown or crashed');
    await agent.request('POST', `/guests/${id}/poweroff?wait=10`);
    const later = await download(snap(id, '/later/download'));
    expect(later.bytes.equals(clean.bytes), 'the disk changed between the snapshots').to.equal(false);

    const refused = await agent.request('POST', `${snap(id, '/clean/rollback')}?wait=10`, GO_EMPTY);
    expect(refused.status).to.equal(500);
    expect(refused.body.error).to.equal('HK_ERR_JOB_FAILED');
    expect(refused.body.message).to.include('destroyMoreRecent');
    expect((await agent.request('GET', snap(id))).body.map((s: { id: string }) => s.id), 'a refused rollback changes nothing').to.deep.equal(['clean', 'later']);

    const rolled = await agent.request('POST', `${snap(id, '/clean/rollback')}?wait=10`, { ...GO_EMPTY, destroyMoreRecent: true });
    expect(rolled.status, rolled.text).to.equal(200);
    expect(rolled.body.map((s: { id: string }) => s.id)).to.deep.equal(['clean']);
    expect((await agent.request('GET', snap(id))).body.map((s: { id: string }) => s.id)).to.deep.equal(['clean']);
    await take('after');
    const after = await download(snap(id, '/after/download'));
    expect(after.bytes.equals(clean.bytes), 'the disk holds what it held at "clean" again').to.equal(true);
  });

  it('checks the state again when the job starts: a rollback queued behind a start fails naming the state', async () => {
    const id = await newGuest({ 'simulator.delay.start': '800' }, 1);
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 's1' });
    const start = await agent.request('POST', `/guests/${id}/start`);
    expect(start.status).to.equal(202);
    const rollback = await agent.request('POST', snap(id, '/s1/rollback?wait=0'), GO_EMPTY);
    expect(rollback.status, rollback.text).to.equal(202);
    const job = await waitFor(async () => {
      const j = await agent.request('GET', `/jobs/${rollback.headers.get('x-guest-job-id')}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 10_000, 'the rollback job to end');
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.include('is running; rollbackSnapshot needs it off');
  });

  it('deletes as a job; a second change of the same snapshot while one is queued is a 409', async () => {
    const id = await newGuest({ 'simulator.delay.deleteSnapshot': '600' }, 1);
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'gone' });
    const first = await agent.request('DELETE', snap(id, '/gone?wait=0'));
    expect(first.status, first.text).to.equal(202);
    const second = await agent.request('DELETE', snap(id, '/gone?wait=0'), 'null');
    expect(second.status).to.equal(409);
    expect(second.body.message).to.include(first.headers.get('x-guest-job-id')!);
    const downloading = await agent.request('GET', snap(id, '/gone/download'));
    expect(downloading.status, 'a snapshot a job is deleting is not downloaded').to.equal(409);
    await waitFor(async () => (await agent.request('GET', `/jobs/${first.headers.get('x-guest-job-id')}`)).body.Status === 'Complete', underLoad(10_000), 'the delete');
    expect((await agent.request('GET', snap(id))).body).to.deep.equal([]);
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'again' });
    const waited = await agent.request('DELETE', snap(id, '/again?wait=10'));
    expect(waited.status, waited.text).to.equal(200);
    expect(waited.body).to.deep.equal([{ id: 'again', size: 0 }]);
  });

  it('refuses snapshots of a guest being created, and reports injected stage failures', async () => {
    const creating = await agent.request('POST', '/guests?start=false', { memory: 64, disks: [{ size: 8 }], metadata: { 'simulator.delay.create': '1500' } });
    const id = creating.body.id;
    const listed = await agent.request('GET', snap(id));
    expect(listed.status).to.equal(409);
    expect(listed.body.message).to.include('is creating');
    await waitFor(async () => (await agent.request('GET', `/guests/${id}`)).body.state === 'off', underLoad(10_000), 'the create');

    const failing = await newGuest({ 'simulator.fail': 'createSnapshot' });
    const res = await agent.request('POST', `${snap(failing)}?wait=10`, { ...GO_EMPTY, dest: 'x' });
    expect(res.status).to.equal(500);
    expect(res.body.message).to.include('simulated failure of createSnapshot');
    expect((await agent.request('GET', snap(failing))).body).to.deep.equal([]);
    const listFails = await agent.request('GET', snap(await newGuest({ 'simulator.fail': 'listSnapshots' })));
    expect(listFails.status).to.equal(502);
  });

  it('downloads with Content-Length, chunked when the backend cannot tell the size, and cuts off a transfer that fails', async () => {
    const id = await newGuest({}, 1);
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'd' });
    const sized = await download(snap(id, '/d/download'));
    expect(sized.status).to.equal(200);
    expect(sized.headers.get('content-type')).to.equal('application/octet-stream');
    expect(sized.headers.get('content-length')).to.equal(String(DOWNLOAD_BYTES));
    expect(sized.bytes.length).to.equal(DOWNLOAD_BYTES);
    expect((await agent.request('GET', diskSnap(id, 'vda', '/d/download'))).status).to.equal(200);

    const two = await newGuest();
    await agent.request('POST', `${snap(two)}?wait=10`, { ...GO_EMPTY, dest: 'd' });
    const several = await agent.request('GET', snap(two, '/d/download'));
    expect(several.status).to.equal(409);
    expect(several.body.message).to.include(`/guests/${two}/disks/{disk}/snapshots/d/download`);
    expect((await download(diskSnap(two, 'vdb', '/d/download'))).bytes.length).to.equal(DOWNLOAD_BYTES);

    const chunkedGuest = await newGuest({ 'simulator.download': 'chunked' }, 1);
    await agent.request('POST', `${snap(chunkedGuest)}?wait=10`, { ...GO_EMPTY, dest: 'c' });
    const chunked = await download(snap(chunkedGuest, '/c/download'));
    expect(chunked.headers.get('content-length')).to.equal(null);
    expect(chunked.headers.get('transfer-encoding')).to.equal('chunked');
    expect(chunked.bytes.length).to.equal(DOWNLOAD_BYTES);

    const broken = await newGuest({ 'simulator.download': 'fail-midway' }, 1);
    await agent.request('POST', `${snap(broken)}?wait=10`, { ...GO_EMPTY, dest: 'b' });
    let failure: unknown;
    try {
      const res = await fetch(agent.url + snap(broken, '/b/download'));
      await res.arrayBuffer();
    } catch (error) {
      failure = error;
    }
    expect(failure, 'a download cut off midway is an error for the client, not a short success').to.be.instanceOf(Error);
    // The agent is fine afterwards.
    expect((await agent.request('GET', snap(broken))).status).to.equal(200);
  });

  it('rolls back and deletes one disk without touching the other', async () => {
    const id = await newGuest();
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'both' });
    await agent.request('POST', `${diskSnap(id, 'vda')}?wait=10`, { ...GO_EMPTY, dest: 'vda-only' });
    const rolled = await agent.request('POST', `${diskSnap(id, 'vda', '/both/rollback')}?wait=10`, { ...GO_EMPTY, destroyMoreRecent: true });
    expect(rolled.status, rolled.text).to.equal(200);
    expect((await agent.request('GET', diskSnap(id, 'vda'))).body.map((s: { id: string }) => s.id)).to.deep.equal(['both']);
    const removed = await agent.request('DELETE', `${diskSnap(id, 'vdb', '/both')}?wait=10`);
    expect(removed.status, removed.text).to.equal(200);
    expect((await agent.request('GET', diskSnap(id, 'vdb'))).body).to.deep.equal([]);
    expect((await agent.request('GET', diskSnap(id, 'vda'))).body.map((s: { id: string }) => s.id)).to.deep.equal(['both']);
    expect((await agent.request('GET', snap(id))).body, 'no longer on every disk: not a guest-wide snapshot').to.deep.equal([]);
  });

  it('deleting a guest deletes its snapshots', async () => {
    const id = await newGuest();
    await agent.request('POST', `${snap(id)}?wait=10`, { ...GO_EMPTY, dest: 'keep' });
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    expect((await agent.request('GET', snap(id))).status).to.equal(404);
  });
});
