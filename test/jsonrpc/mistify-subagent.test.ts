/**
 * mistify sub-agents as drop-ins: the real kernel (in-process), started from a config in
 * mistify-agent's own format, calls a JSON-RPC 1.0 server written here from
 * the wire format (fake-sub-agent.ts) for every seed action and metrics
 * call, including error replies, replies slower than the stage timeout,
 * and a sub-agent that is not listening.
 */
import { expect } from 'chai';
import { waitFor } from '../support/agent.js';
import { subAgentSuite } from './fake-sub-agent.js';

function mistifyConfig(port: number) {
  const stage = (method: string, args?: Record<string, string>) => ({ stages: [{ service: 'test', method, ...(args ? { args } : {}) }] });
  return {
    // mistify-agent's keys:
    services: { test: { port, max_pending: 2 } },
    actions: {
      create: stage('Test.Create'),
      run: stage('Test.Run'),
      shutdown: stage('Test.Shutdown'),
      reboot: stage('Test.Reboot'),
      restart: stage('Test.Restart', { mode: 'hard' }),
      poweroff: stage('Test.Poweroff'),
      suspend: stage('Test.Suspend'),
      delete: stage('Test.Delete'),
      cpuMetrics: stage('Test.CpuMetrics', { source: 'hypervisor' }),
      nicMetrics: stage('Test.NicMetrics'),
      diskMetrics: stage('Test.DiskMetrics'),
      listImages: stage('Test.ListImages'),
      getImage: stage('Test.GetImage'),
      fetchImage: stage('Test.RequestImage'),
      deleteImage: stage('Test.DeleteImage'),
      listContainers: stage('Test.ListContainers'),
    },
    dbpath: '/nonexistent/agent.db', // --data-dir from the test wins
    // hyperkern's keys pass through:
    logLevel: 'info',
    accessLog: false,
    jobs: { stageTimeoutSeconds: 2 },
  };
}

describe('jsonrpc: mistify sub-agents over JSON-RPC 1.0', function () {
  this.timeout(60_000);
  const { sub, agent } = subAgentSuite('Test', mistifyConfig);

  async function newGuest(metadata: Record<string, string> = {}): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=10', { memory: 128, cpu: 1, metadata });
    expect(res.status, res.text).to.equal(200);
    return res.body.id;
  }

  it('loads a mistify-format config and warns about the actions it has no route for', () => {
    expect(agent.logs.some((l) => l.includes('action \\"listContainers\\" is a mistify-agent action hyperkern has no route for yet'))).to.equal(true);
  });

  it('drives the image actions through mistify-agent-image-style methods with an ImageRequest', async () => {
    sub.calls.length = 0;
    const fetched = await agent.request('POST', '/images?wait=10', { id: 'deb', type: '', dest: '', source: 'http://127.0.0.1:9/deb.qcow2' });
    expect(fetched.status, fetched.text).to.equal(200);
    expect(fetched.body).to.include({ id: 'deb', type: 'kvm', status: 'complete' });
    expect(sub.callsTo('Test.RequestImage')[0].params[0]).to.deep.equal({ id: 'deb', type: '', dest: '', source: 'http://127.0.0.1:9/deb.qcow2', sha256: '' });
    const job = await agent.request('GET', `/jobs/${fetched.headers.get('x-guest-job-id')}`);
    expect(job.body).to.include({ Action: 'fetchImage', Status: 'Complete', GuestID: '' });
    expect((await agent.request('GET', '/images')).body.map((i: { id: string }) => i.id)).to.deep.equal(['deb']);
    expect((await agent.request('GET', '/images/deb')).body).to.include({ id: 'deb', size: 10 });
    expect((await agent.request('GET', '/images/nope')).status).to.equal(404);
    const failed = await agent.request('POST', '/images?wait=10', { id: 'x', source: '' });
    expect(failed.status).to.equal(500);
    expect(failed.body.job.Message).to.match(/source is required/);
    const deleted = await agent.request('DELETE', '/images/deb?wait=10');
    expect(deleted.status, deleted.text).to.equal(200);
    expect(sub.images.size).to.equal(0);
  });

  it('drives every lifecycle action through the sub-agent, with mistify\'s request shape', async () => {
    sub.calls.length = 0;
    const id = await newGuest();
    const create = sub.callsTo('Test.Create')[0];
    expect(create.path).to.equal('/_mistify_RPC_');
    expect(create.contentType).to.equal('application/json');
    expect(create.params).to.have.length(1);
    expect(create.params[0]).to.include({ action: 'create' });
    expect(create.params[0].guest.id).to.equal(id);
    expect(create.params[0].args).to.deep.equal({});
    expect(create.id).to.be.a('number');

    const steps: Array<[string, string, string]> = [
      ['start', 'Test.Run', 'running'], // mistify's "run" is hyperkern's start
      ['suspend', 'Test.Suspend', 'suspended'],
      ['start', 'Test.Run', 'running'],
      ['reboot', 'Test.Reboot', 'running'],
      ['restart', 'Test.Restart', 'running'],
      ['shutdown', 'Test.Shutdown', 'shutdown'],
      ['start', 'Test.Run', 'running'],
      ['poweroff', 'Test.Poweroff', 'off'],
    ];
    for (const [action, method, state] of steps) {
      const before = sub.callsTo(method).length;
      const res = await agent.request('POST', `/guests/${id}/${action}?wait=10&timeout=30`);
      expect(res.status, `${action}: ${res.text}`).to.equal(200);
      expect(res.body.state).to.equal(state);
      expect(sub.callsTo(method)).to.have.length(before + 1);
      const job = await agent.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`);
      expect(job.body.Message).to.equal(`fake ${method.split('.')[1]} done`);
    }
    // The stage's config args and the request's query args, as strings (mistify's map[string]string).
    expect(sub.callsTo('Test.Restart')[0].params[0].args).to.deep.equal({ mode: 'hard', timeout: '30' });

    // mistify's POST /guests/{id}/delete, an alias of DELETE.
    const deleted = await agent.request('POST', `/guests/${id}/delete?wait=10`);
    expect(deleted.status, deleted.text).to.equal(200);
    expect(sub.callsTo('Test.Delete')).to.have.length(1);
    expect((await agent.request('GET', `/guests/${id}`)).status).to.equal(404);
  });

  it('sends GuestMetricsRequest and answers only the requested part of GuestMetricsResponse', async () => {
    const id = await newGuest();
    const cpu = await agent.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.deep.equal([{ cpu_time: 2.5, vcpu_time: 2 }]);
    const sent = sub.callsTo('Test.CpuMetrics').at(-1)!.params[0];
    expect(sent).to.include({ type: 'cpu' });
    expect(sent.args).to.deep.equal({ source: 'hypervisor' });
    expect(sent.guest.id).to.equal(id);
    const nic = await agent.request('GET', `/guests/${id}/metrics/nic`);
    expect(nic.status).to.equal(200);
    expect(Object.keys(nic.body)).to.deep.equal(['eth0']);
    expect(sub.callsTo('Test.NicMetrics').at(-1)!.params[0].type).to.equal('nic');
    const disk = await agent.request('GET', `/guests/${id}/metrics/disk`);
    expect(disk.status).to.equal(200);
    expect(disk.body).to.have.all.keys('vda');
    expect(disk.body.vda.write_bytes).to.equal(1024);
  });

  it('keeps connections alive: many sequential calls use one connection', async () => {
    const id = await newGuest();
    const before = sub.connections;
    for (let i = 0; i < 30; i++) {
      expect((await agent.request('GET', `/guests/${id}/metrics/cpu`)).status).to.equal(200);
    }
    expect(sub.connections - before, 'new connections for 30 calls').to.be.at.most(1);
  });

  it('holds calls in flight to max_pending', async () => {
    const id = await newGuest({ 'fake.slow': 'Test.CpuMetrics:300' });
    sub.maxInFlight = 0;
    const answers = await Promise.all(Array.from({ length: 6 }, () => agent.request('GET', `/guests/${id}/metrics/cpu`)));
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    expect(sub.maxInFlight).to.equal(2);
  });

  it('ends a job in Error with the sub-agent\'s error string, and a metrics call in 502', async () => {
    const id = await newGuest({ 'fake.error': 'Test.Run' });
    const res = await agent.request('POST', `/guests/${id}/start?wait=10`);
    expect(res.status).to.equal(500);
    expect(res.headers.get('x-guest-job-status')).to.equal('Error');
    expect(res.body.message).to.include('Test.Run failed: the fake sub-agent was told to fail');
    const other = await newGuest({ 'fake.error': 'Test.DiskMetrics' });
    const metrics = await agent.request('GET', `/guests/${other}/metrics/disk`);
    expect(metrics.status).to.equal(502);
    expect(metrics.body.message).to.match(/stage test\.Test\.DiskMetrics failed: Test\.DiskMetrics at http:\/\/127\.0\.0\.1:\d+\/_mistify_RPC_ answered an error: Test\.DiskMetrics failed/);
  });

  it('fails a stage whose reply comes after the timeout, and keeps working afterwards', async () => {
    const id = await newGuest({ 'fake.slow': 'Test.Run:3000' });
    const res = await agent.request('POST', `/guests/${id}/start?wait=10`);
    expect(res.status).to.equal(500);
    expect(res.body.message).to.include('stage test.Test.Run did not finish within 2 s');
    const slowMetrics = await newGuest({ 'fake.slow': 'Test.CpuMetrics:3000' });
    const metrics = await agent.request('GET', `/guests/${slowMetrics}/metrics/cpu`);
    expect(metrics.status).to.equal(504);
    const fine = await newGuest();
    expect((await agent.request('POST', `/guests/${fine}/start?wait=10`)).status).to.equal(200);
  });

  it('says connection refused when the sub-agent is down, shows it on /health, and recovers when it is back', async () => {
    const id = await newGuest();
    const port = sub.port;
    await sub.stop();
    try {
      const res = await agent.request('GET', `/guests/${id}/metrics/cpu`);
      expect(res.status).to.equal(502);
      expect(res.body.message).to.include(`connection refused: nothing listens on 127.0.0.1:${port}; is the sub-agent running?`);
      const job = await agent.request('POST', `/guests/${id}/start?wait=10`);
      expect(job.status).to.equal(500);
      expect(job.body.message).to.include('connection refused');
      const health = await agent.request('GET', '/health');
      expect(health.body.status).to.equal('degraded');
      expect(health.body.plugins.test.healthy).to.equal(false);
    } finally {
      await sub.start(port);
    }
    const back = await waitFor(async () => {
      const res = await agent.request('GET', `/guests/${id}/metrics/cpu`);
      return res.status === 200 && res;
    }, 5000, 'metrics through the restarted sub-agent');
    expect(back.body).to.deep.equal([{ cpu_time: 2.5, vcpu_time: 2 }]);
    expect((await agent.request('GET', '/health')).body.plugins.test.healthy).to.equal(true);
  });
});
