/**
 * The jsonrpc plugin with "isolate": true: a plugin whose stages depend on
 * its options (they come from the child's `init`) runs out of process
 * unchanged, and the sub-agent's calls then go through two hops.
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
      plugins: [{ module: 'jsonrpc', id: 'test', isolate: true, options: { port: sub.port, methods: { 'Test.Create': 'action', 'Test.CpuMetrics': 'metrics' } } }],
      actions: { create: { stages: ['test.Test.Create'] }, cpuMetrics: { stages: ['test.Test.CpuMetrics'] } },
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
});
