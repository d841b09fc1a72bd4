/**
 * The same plugin module in-process and isolated: the simulator, unchanged,
 * with "isolate": true, through sync guards, jobs, metrics, and a stage that
 * is cut short by its own timeout inside the child.
 */
import { expect } from 'chai';
import { suiteChildAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

describe('isolated plugins: the simulator module, unchanged, in a child process', function () {
  this.timeout(60_000);
  const agent = suiteChildAgent(() => {
    const config = simulatorConfig();
    for (const plugin of config.plugins) if (plugin.module === 'simulator') plugin.isolate = true;
    return { config };
  });

  it('walks a guest through every action and its metrics', async () => {
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 128, cpu: 2, disks: [{ size: 10 }], nics: [{}] });
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id;
    expect(created.body.disks[0].source).to.equal(`sim://${id}/${created.body.disks[0].device}`);
    for (const [action, state] of [['start', 'running'], ['suspend', 'suspended'], ['start', 'running'], ['reboot', 'running'], ['restart', 'running'], ['shutdown', 'shutdown'], ['start', 'running']]) {
      const res = await agent.request('POST', `/guests/${id}/${action}?wait=10`);
      expect(res.status, `${action}: ${res.text}`).to.equal(200);
      expect(res.body.state).to.equal(state);
    }
    // The guard plugin stays in-process; its 409 comes before the isolated stage.
    const refused = await agent.request('POST', `/guests/${id}/start`);
    expect(refused.status).to.equal(409);
    for (const type of ['cpu', 'nic', 'disk']) {
      const res = await agent.request('GET', `/guests/${id}/metrics/${type}`);
      expect(res.status, `${type}: ${res.text}`).to.equal(200);
    }
    expect((await agent.request('GET', `/guests/${id}/metrics/cpu`)).body).to.have.length(2);
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    const health = (await agent.request('GET', '/health')).body.plugins.simulator;
    expect(health).to.deep.include({ healthy: true, message: 'simulated hypervisor' });
    expect(health.details).to.include({ isolated: true, restarts: 0 });
  });

  it('ends a shutdown the guest ignores with the simulator\'s own message from the child', async () => {
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 128, cpu: 1, metadata: { 'simulator.acpi': 'ignore' } });
    const id = created.body.id;
    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).status).to.equal(200);
    const res = await agent.request('POST', `/guests/${id}/shutdown?wait=20&timeout=1`);
    expect(res.status).to.equal(500);
    expect(res.body.message).to.include('guest did not power off within 1 s (does it handle ACPI?)');
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('running');
  });
});
