/**
 * A backend from one folder (test/fixtures/mini-sim): its config is the
 * plugin entry and its options, nothing else. The kernel plans every action
 * from the backend's stage names, guards them with the lifecycle table, and
 * create boots the guest as with the shipped configs.
 */
import { expect } from 'chai';
import path from 'node:path';
import { distRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';

describe('a second backend from one folder and no action config', () => {
  const agent = suiteAgent(() => ({
    config: {
      logLevel: 'info',
      plugins: [{ module: 'guard' }, { module: path.join(distRoot, 'test/fixtures/mini-sim/index.js'), options: { cpuSeconds: 7 } }],
    },
  }));

  it('creates (and boots), guards, powers off, reads metrics and deletes', async () => {
    const created = await agent.request('POST', '/guests?wait=10', { cpu: 2 });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state, 'create ran the backend start too').to.equal('running');
    const id = created.body.id;
    const again = await agent.request('POST', `/guests/${id}/start`);
    expect(again.status, 'the lifecycle table refuses start from running').to.equal(409);
    expect(again.body.message).to.match(/guest is running; start needs off/);
    const off = await agent.request('POST', `/guests/${id}/poweroff?wait=10`);
    expect(off.status, off.text).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('off');
    const cpu = await agent.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body, 'its options reached it').to.deep.equal([{ cpu_time: 7, vcpu_time: 7 }, { cpu_time: 7, vcpu_time: 7 }]);
    const shutdown = await agent.request('POST', `/guests/${id}/shutdown`);
    expect(shutdown.status, 'no shutdown stage: the action is not configured').to.equal(501);
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).status).to.equal(404);
  });
});
