/**
 * The jsonrpc plugin with "isolate": true: a plugin whose stages depend on
 * its options (they come from the child's `init`) runs out of process
 * unchanged, and the sub-agent's calls then go through two hops: lifecycle,
 * metrics, image and snapshot stages, and a download streamed from the
 * sub-agent through the child to the client.
 */
import { expect } from 'chai';
import { suiteChildAgent } from '../support/agent-hooks.js';
import { FakeSubAgent } from './fake-sub-agent.js';

describe('jsonrpc: the bridge itself isolated', function () {
  this.timeout(30_000);
  let sub: FakeSubAgent;
  before(async () => {
    sub = await new FakeSubAgent('Test').start();
  });
  const agent = suiteChildAgent(() => ({
    config: {
      logLevel: 'info',
      plugins: [
        {
          module: 'jsonrpc',
          id: 'test',
          isolate: true,
          options: {
            port: sub.port,
            methods: {
              'Test.Create': 'action', 'Test.CpuMetrics': 'metrics', 'Test.RequestImage': 'image', 'Test.GetImage': 'image',
              'Test.CreateSnapshot': 'snapshot', 'Test.GetSnapshot': 'snapshot',
            },
          },
        },
        { module: 'jsonrpc', id: 'download', isolate: true, options: { port: sub.port, path: '/snapshots/download', methods: { 'Test.DownloadSnapshot': 'snapshotDownload' } } },
      ],
      actions: {
        create: { stages: ['test.Test.Create'] },
        cpuMetrics: { stages: ['test.Test.CpuMetrics'] },
        fetchImage: { stages: ['test.Test.RequestImage'] },
        getImage: { stages: ['test.Test.GetImage'] },
        createSnapshot: { stages: ['test.Test.CreateSnapshot'] },
        getSnapshot: { stages: ['test.Test.GetSnapshot'] },
        downloadSnapshot: { stages: ['download.Test.DownloadSnapshot'] },
      },
    },
  }));
  after(async () => {
    await sub?.stop();
  });

  it('creates a guest and reads its metrics through the child and the sub-agent', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { cpu: 1, memory: 64 });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state).to.equal('off');
    const cpu = await agent.request('GET', `/guests/${created.body.id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.deep.equal([{ cpu_time: 2.5, vcpu_time: 2 }]);
    const health = (await agent.request('GET', '/health')).body.plugins.test;
    expect(health).to.deep.include({ healthy: true });
    expect(health.details).to.include({ isolated: true, calls: 2 });
    expect(health.details.pid).to.not.equal(agent.pid);
  });

  it('fetches an image, takes a snapshot and streams its download through the children', async () => {
    const fetched = await agent.request('POST', '/images?wait=10', { id: 'deb', type: '', dest: '', source: 'http://127.0.0.1:9/deb.qcow2' });
    expect(fetched.status, fetched.text).to.equal(200);
    expect((await agent.request('GET', '/images/deb')).body).to.include({ id: 'deb', size: 10 });
    const created = await agent.request('POST', '/guests?wait=10', { cpu: 1, memory: 64, disks: [{ size: 8 }] });
    const id = created.body.id;
    const snap = await agent.request('POST', `/guests/${id}/disks/vda/snapshots?wait=10`, { id: '', dest: 's', recursive: false, destroyMoreRecent: false });
    expect(snap.status, snap.text).to.equal(200);
    const res = await fetch(`${agent.url}/guests/${id}/disks/vda/snapshots/s/download`);
    expect(res.status).to.equal(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(sub.zfs.contentOf(`guests/${id}/disk-0@s`)!)).to.equal(true);
    expect((await agent.request('GET', '/health')).body.plugins.download.details).to.include({ isolated: true, streams: 0 });
  });
});
