/**
 * Snapshots through a mistify sub-agent: the real kernel, from a config in
 * mistify-agent's format, calls mistify-agent-image's snapshot methods
 * (ImageStore.CreateSnapshot... here Test.*) on a JSON-RPC 1.0 server written
 * from the wire format, with mistify-agent's entity ids (`guests/ID`,
 * `guests/ID/disk-N`, `@NAME`), and streams downloads from its
 * `/snapshots/download` endpoint.
 */
import { expect } from 'chai';
import { FakeZfs, subAgentSuite } from './fake-sub-agent.js';

const GO_EMPTY = { id: '', dest: '', recursive: false, destroyMoreRecent: false };

function mistifyConfig(port: number) {
  const stage = (method: string, service = 'test') => ({ stages: [{ service, method }] });
  return {
    services: { test: { port }, testDownload: { port, path: '/snapshots/download' } },
    actions: {
      create: stage('Test.Create'),
      run: stage('Test.Run'),
      poweroff: stage('Test.Poweroff'),
      delete: stage('Test.Delete'),
      listSnapshots: stage('Test.ListSnapshots'),
      getSnapshot: stage('Test.GetSnapshot'),
      createSnapshot: stage('Test.CreateSnapshot'),
      deleteSnapshot: stage('Test.DeleteSnapshot'),
      rollbackSnapshot: stage('Test.RollbackSnapshot'),
      downloadSnapshot: stage('Test.DownloadSnapshot', 'testDownload'),
    },
    dbpath: '/nonexistent/agent.db',
    logLevel: 'info',
    accessLog: false,
    jobs: { stageTimeoutSeconds: 5 },
  };
}

describe('jsonrpc: snapshots through mistify-agent-image-style methods', function () {
  this.timeout(60_000);
  const { sub, agent } = subAgentSuite('Test', mistifyConfig);

  let id: string;
  const names = (body: { id: string }[]) => body.map((s) => s.id);

  it('takes a guest-wide snapshot with mistify\'s SnapshotRequest: the guest entity, recursive', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1, disks: [{ size: 8 }, { size: 8 }] });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const res = await agent.request('POST', `/guests/${id}/snapshots?wait=10`, { ...GO_EMPTY, dest: 's1' });
    expect(res.status, res.text).to.equal(200);
    // ?wait answers what GetSnapshot says of the guest's own dataset; lists sum over its disks.
    expect(res.body).to.deep.equal([{ id: 's1', size: 1 }]);
    expect(sub.callsTo('Test.CreateSnapshot')[0].params).to.deep.equal([{ id: `guests/${id}`, dest: 's1', recursive: true, destroyMoreRecent: false }]);
    expect(sub.zfs.snapshots.map((s) => s.id)).to.deep.equal([`guests/${id}`, `guests/${id}/disk-0`, `guests/${id}/disk-1`].map((d) => `${FakeZfs.POOL}/${d}@s1`));
    expect((await agent.request('GET', `/guests/${id}/snapshots`)).body).to.deep.equal([{ id: 's1', size: 3 }]);
    expect((await agent.request('GET', `/guests/${id}/disks/vdb/snapshots`)).body).to.deep.equal([{ id: 's1', size: 1 }]);
    expect(sub.callsTo('Test.ListSnapshots').at(-1)!.params[0]).to.deep.equal({ id: `guests/${id}/disk-1`, dest: '', recursive: false, destroyMoreRecent: false });
  });

  it('gets one snapshot by entity@name; the sub-agent\'s "does not exist" is a 404', async () => {
    const got = await agent.request('GET', `/guests/${id}/disks/vda/snapshots/s1`);
    expect(got.status, got.text).to.equal(200);
    expect(got.body).to.deep.equal([{ id: 's1', size: 1 }]);
    expect(sub.callsTo('Test.GetSnapshot').at(-1)!.params[0].id).to.equal(`guests/${id}/disk-0@s1`);
    const missing = await agent.request('GET', `/guests/${id}/snapshots/nope`);
    expect(missing.status).to.equal(404);
    expect(missing.body.error).to.equal('HK_ERR_SNAPSHOT_NOT_FOUND');
    expect(sub.callsTo('Test.GetSnapshot').at(-1)!.params[0].id).to.equal(`guests/${id}@nope`);
  });

  it('rolls a disk back: refused while later snapshots exist, then with destroyMoreRecent', async () => {
    sub.zfs.write(`guests/${id}/disk-0`);
    const later = await agent.request('POST', `/guests/${id}/disks/vda/snapshots?wait=10`, { ...GO_EMPTY, dest: 's2' });
    expect(later.status, later.text).to.equal(200);
    expect(later.body).to.deep.equal([{ id: 's2', size: 2 }]);
    const refused = await agent.request('POST', `/guests/${id}/disks/vda/snapshots/s1/rollback?wait=10`, GO_EMPTY);
    expect(refused.status).to.equal(500);
    expect(refused.body.message).to.include('more recent snapshots or bookmarks exist');
    const rolled = await agent.request('POST', `/guests/${id}/disks/vda/snapshots/s1/rollback?wait=10`, { ...GO_EMPTY, destroyMoreRecent: true });
    expect(rolled.status, rolled.text).to.equal(200);
    expect(sub.callsTo('Test.RollbackSnapshot').at(-1)!.params[0]).to.deep.equal({ id: `guests/${id}/disk-0@s1`, dest: '', recursive: false, destroyMoreRecent: true });
    expect(sub.zfs.written.get(`guests/${id}/disk-0`)).to.equal(0);
    expect(names((await agent.request('GET', `/guests/${id}/disks/vda/snapshots`)).body)).to.deep.equal(['s1']);
  });

  it('rolls a guest back on every dataset (a ZFS rollback is not recursive)', async () => {
    const before = sub.callsTo('Test.RollbackSnapshot').length;
    const rolled = await agent.request('POST', `/guests/${id}/snapshots/s1/rollback?wait=10`, GO_EMPTY);
    expect(rolled.status, rolled.text).to.equal(200);
    expect(sub.callsTo('Test.RollbackSnapshot').slice(before).map((c) => c.params[0].id)).to.deep.equal([`guests/${id}@s1`, `guests/${id}/disk-0@s1`, `guests/${id}/disk-1@s1`]);
  });

  it('streams a download from the sub-agent\'s /snapshots/download, chunked as it sent it', async () => {
    const res = await fetch(`${agent.url}/guests/${id}/disks/vdb/snapshots/s1/download`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/octet-stream');
    expect(res.headers.get('content-length')).to.equal(null);
    expect(bytes.equals(sub.zfs.contentOf(`guests/${id}/disk-1@s1`)!)).to.equal(true);
    expect(sub.downloads.at(-1)).to.deep.equal({ id: `guests/${id}/disk-1@s1`, dest: '', recursive: false, destroyMoreRecent: false });
    // Two disks: no one image for the guest (the kernel answers before asking the sub-agent).
    expect((await agent.request('GET', `/guests/${id}/snapshots/s1/download`)).status).to.equal(409);
  });

  it('deletes a guest-wide snapshot recursively', async () => {
    const res = await agent.request('DELETE', `/guests/${id}/snapshots/s1?wait=10`, null);
    expect(res.status, res.text).to.equal(200);
    expect(sub.callsTo('Test.DeleteSnapshot').at(-1)!.params[0]).to.deep.equal({ id: `guests/${id}@s1`, dest: '', recursive: true, destroyMoreRecent: false });
    expect(sub.zfs.snapshots).to.deep.equal([]);
    expect((await agent.request('GET', `/guests/${id}/snapshots`)).body).to.deep.equal([]);
  });
});
