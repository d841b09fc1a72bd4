/**
 * Snapshots of a container guest's layer through mistify's snapshot routes,
 * on real LXC through an agent process: a file written inside, a snapshot
 * taken from a Go-shaped body while the container runs, the file changed
 * and another deleted, a rollback refused (409) while it runs and done once
 * it is off, and after a start the file is back; the list in the wire
 * format; the download a valid tar holding the file, with no host path in
 * any answer; the disk routes a 404 (a container has no disks); the guest's
 * delete removes its snapshots.
 */
import { expect } from 'chai';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContainerAgent, run } from './snapshots-console-agent.js';

/** A Go client's SnapshotRequest with nothing set. */
const GO_EMPTY = { id: '', dest: '', recursive: false, destroyMoreRecent: false };

describe('container snapshots through the API (LXC)', function () {
  this.timeout(180_000);
  let world: ContainerAgent;
  let id = '';

  before(async () => {
    world = await ContainerAgent.make('hk-ctsnapapi-', { idle: { entrypoint: ['/bin/sh', '-c'], cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'] } });
    id = await world.guest('idle');
  });
  after(async () => {
    await world?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(world?.agent.logs.filter((l) => !l.includes('"msg":"request"')).slice(-30).join('\n'));
  });
  const api = () => world.agent;
  const noHostPath = (text: string) => expect(text, 'no host path in an answer').not.to.include(world.work);

  it('takes a snapshot of the running container, rolls back once it is off: the changed file and the deleted one are back', async () => {
    await world.sh(id, 'echo version-1 > /marker && echo keep > /other');
    const taken = await api().request('POST', `/guests/${id}/snapshots`, { ...GO_EMPTY, dest: 'before' });
    expect(taken.status, taken.text).to.equal(200);
    expect(taken.body).to.have.length(1);
    expect(taken.body[0]).to.have.all.keys('id', 'size');
    expect(taken.body[0].id).to.equal('before');
    expect(taken.body[0].size).to.be.a('number').and.at.least(1);
    expect((await api().request('GET', `/guests/${id}`)).body.state, 'thawed after the copy').to.equal('running');

    await world.sh(id, 'echo version-2 > /marker && /bin/busybox rm /other && echo new > /added');
    const refused = await api().request('POST', `/guests/${id}/snapshots/before/rollback`, null);
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.body.message).to.match(/is running; rollbackSnapshot needs it off, shutdown or crashed/);

    expect((await world.act(id, 'poweroff')).Status).to.equal('Complete');
    const rolled = await api().request('POST', `/guests/${id}/snapshots/before/rollback`, GO_EMPTY);
    expect(rolled.status, rolled.text).to.equal(200);
    expect(rolled.body[0].id).to.equal('before');
    expect((await world.act(id, 'start')).Status).to.equal('Complete');
    expect(await world.sh(id, 'cat /marker')).to.equal('version-1\n');
    expect(await world.sh(id, 'cat /other')).to.equal('keep\n');
    expect(await world.sh(id, 'test -e /added && echo there || echo gone')).to.equal('gone\n');
  });

  it('lists in the wire format and downloads a tar holding the file; names, unknown snapshots and disk routes are refused', async () => {
    const second = await api().request('POST', `/guests/${id}/snapshots?wait=60`, null);
    expect(second.status, second.text).to.equal(200);
    expect(second.body[0].id).to.match(/^snap-\d+$/);
    const list = await api().request('GET', `/guests/${id}/snapshots`);
    expect(list.status).to.equal(200);
    expect(list.body.map((s: { id: string }) => s.id)).to.deep.equal(['before', second.body[0].id]);
    for (const s of list.body) expect(s).to.have.all.keys('id', 'size');
    noHostPath(list.text);

    const res = await fetch(`${api().url}/guests/${id}/snapshots/before/download`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/x-tar');
    expect(res.headers.get('content-disposition')).to.equal('attachment; filename="before.tar"');
    const tar = Buffer.from(await res.arrayBuffer());
    const file = path.join(world.work, 'before.tar');
    await writeFile(file, tar);
    const { stdout: listing } = await run('tar', ['-tf', file]);
    expect(listing.split('\n')).to.include('./marker');
    expect((await run('tar', ['-xOf', file, './marker'])).stdout).to.equal('version-1\n');
    expect(tar.includes(Buffer.from(world.work)), 'no host path in the tar').to.equal(false);

    const bad = await api().request('POST', `/guests/${id}/snapshots`, { ...GO_EMPTY, dest: '../escape' });
    expect(bad.status, bad.text).to.equal(400);
    const missing = await api().request('GET', `/guests/${id}/snapshots/never/download`);
    expect(missing.status, missing.text).to.equal(404);
    const disk = await api().request('GET', `/guests/${id}/disks/vda/snapshots`);
    expect(disk.status, disk.text).to.equal(404);
    for (const answer of [bad, missing, disk]) noHostPath(answer.text);
  });

  it('deletes a snapshot, and the guest\'s delete removes the rest with its container', async () => {
    const gone = await api().request('DELETE', `/guests/${id}/snapshots/before`, null);
    expect(gone.status, gone.text).to.equal(200);
    expect(gone.body[0].id).to.equal('before');
    const list = await api().request('GET', `/guests/${id}/snapshots`);
    expect(list.body.map((s: { id: string }) => s.id)).not.to.include('before');
    expect(list.body).to.have.length(1);

    const snapshotsDir = path.join(world.containerDir(id), 'snapshots');
    expect((await stat(snapshotsDir)).isDirectory()).to.equal(true);
    const deleted = await api().request('DELETE', `/guests/${id}?wait=60`);
    expect(deleted.status, deleted.text).to.be.oneOf([200, 202]);
    await import('../support/agent.js').then(({ waitFor }) => waitFor(async () => (await api().request('GET', `/guests/${id}`)).status === 404, 60_000, 'the guest to go'));
    expect(await stat(snapshotsDir).then(() => 'there', () => 'gone')).to.equal('gone');
  });
});
