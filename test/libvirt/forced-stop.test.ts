/**
 * Forced stop on a real libvirtd (qemu:///system, TCG): a guest with no OS
 * ignores the ACPI power button, so shutdown?force=true destroys the domain
 * in the same job once the timeout passes, and the job says it was forced.
 */
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { LibvirtWorld, SYSTEM_URI, virsh } from './world.js';

describe('forced stop on libvirt (guest without an OS)', function () {
  this.timeout(180000);
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  before(async function () {
    this.timeout(300000);
    world = await LibvirtWorld.create();
  });
  after(async function () {
    this.timeout(120000);
    await agent?.stop();
    await world?.dispose();
    if (agent) await Promise.all([removeDir(agent.dataDir), rm(`${agent.dataDir}.config.json`, { force: true })]);
  });

  it('shutdown?timeout=2&force=true ends with the domain off and a forced Message', async () => {
    const c = world.config();
    agent = await startAgent({ config: { ...c, logLevel: 'info' }, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    const created = await agent.request('POST', '/guests?wait=90', { memory: 64, cpu: 1, disks: [{ size: 16 }] });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state).to.equal('running');
    const id = created.body.id as string;
    const res = await agent.request('POST', `/guests/${id}/shutdown?timeout=2&force=true&wait=90`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body.state).to.equal('off');
    const job = (await agent.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    expect(job).to.include({ Action: 'shutdown', Status: 'Complete' });
    expect(job.Message).to.match(/^forced: powered off .*did not power off within 2 s/);
    expect((await virsh(SYSTEM_URI, 'domstate', world.prefix + id)).trim()).to.equal('shut off');
    expect((await agent.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
  });
});
