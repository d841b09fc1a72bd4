/**
 * A backend from one folder (test/fixtures/mini-sim): its config is the
 * plugin entry and its options, nothing else. The kernel plans every action
 * from the backend's stage names, guards them with the lifecycle table, and
 * create boots the guest as with the shipped configs.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { distRoot, repoRoot } from '../support/agent.js';
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
    const reboot = await agent.request('POST', `/guests/${id}/reboot`);
    expect(reboot.status, 'no reboot stage: the action is not configured').to.equal(501);
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).status).to.equal(404);
  });

  it('checks NICs and reads ?timeout= with the backend kit, as the shipped backends do', async () => {
    const badNic = await agent.request('POST', '/guests?wait=10', { nics: [{ model: 'ne2k' }] });
    expect(badNic.status, badNic.text).to.equal(500);
    expect(badNic.body.message).to.contain('nic net0: unknown model "ne2k" (one of virtio, virtio-net, virtio-net-pci, e1000, e1000e, rtl8139, vmxnet3)');

    const created = await agent.request('POST', '/guests?wait=10', { nics: [{ model: 'e1000' }] });
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id;
    const shutdown = await agent.request('POST', `/guests/${id}/shutdown?timeout=5&wait=10`);
    expect(shutdown.status, shutdown.text).to.equal(200);
    const job = await agent.request('GET', `/jobs/${shutdown.headers.get('x-guest-job-id')}`);
    expect(job.body.Message, 'the query reached timeoutArg').to.contain('mini-sim shutdown (waited up to 5 s)');
    expect(shutdown.body.state).to.equal('shutdown');
    expect((await agent.request('DELETE', `/guests/${id}?wait=10`)).status).to.equal(200);
    await agent.request('DELETE', `/guests/${badNic.body.job.GuestID}?wait=10`);
  });

  it("is README's plugin example, verbatim", async () => {
    const fixture = await readFile(path.join(repoRoot, 'test/fixtures/mini-sim/index.ts'), 'utf8');
    const code = fixture.slice(fixture.indexOf('\nimport ') + 1);
    const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Writing a plugin'));
    const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example, 'the first ts block of "Writing a plugin"').to.equal(code);
  });
});
