/**
 * Job control on real QEMU (TCG) through the agent, with guests that have
 * no OS (the firmware finds nothing to boot, so nothing answers the ACPI
 * power button): a running shutdown is cancelled through its AbortSignal,
 * and shutdown?force=true powers the guest off in the same job.
 */
import { expect } from 'chai';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { processAlive } from '../support/process-alive.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { readFileSync } from 'node:fs';

describe('job control on QEMU (guests without an OS)', function () {
  this.timeout(180000);
  let agent: RunningAgent;
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hkj-'));
    const config = shippedConfig('qemu.json');
    const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
    entry.options = { ...entry.options, accel: 'tcg', imagesDir: path.join(root, 'images') };
    agent = await startAgent({ config: { ...config, logLevel: 'info' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
  });
  after(async () => {
    await disposeQemuTestAgent(agent);
    await removeDir(root);
  });

  async function runningGuest(): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=120', { memory: 64, cpu: 1, disks: [{ size: 16 }] });
    expect(res.status, res.text).to.equal(200);
    expect(res.body.state).to.equal('running');
    return res.body.id;
  }
  const pidOf = (id: string) => Number(readFileSync(path.join(agent.dataDir, 'plugins', 'qemu', id, 'qemu.pid'), 'utf8'));
  const job = async (id: string) => (await agent.request('GET', `/jobs/${id}`)).body;

  it('cancels a running shutdown: the stage stops waiting at once and the guest keeps running', async () => {
    const id = await runningGuest();
    const accepted = await agent.request('POST', `/guests/${id}/shutdown?timeout=120`);
    expect(accepted.status).to.equal(202);
    const jobId = accepted.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await job(jobId)).Stage === 'qemu.shutdown', 20000, 'the shutdown stage to run');
    const t0 = Date.now();
    const res = await agent.request('DELETE', `/jobs/${jobId}?wait=30`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ Status: 'Error', Message: 'cancelled' });
    expect(Date.now() - t0, 'not the 120 s shutdown timeout').to.be.lessThan(20000);
    expect((await agent.request('GET', `/guests/${id}`)).body.state).to.equal('running');
    expect(processAlive(pidOf(id)), 'QEMU still runs').to.equal(true);
    expect((await agent.request('POST', `/guests/${id}/poweroff?wait=60`)).status).to.equal(200);
  });

  it('shutdown?timeout=2&force=true powers the guest off in the same job, and the job says it was forced', async () => {
    const id = await runningGuest();
    const pid = pidOf(id);
    const res = await agent.request('POST', `/guests/${id}/shutdown?timeout=2&force=true&wait=90`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body.state).to.equal('off');
    const end = await job(res.headers.get('x-guest-job-id')!);
    expect(end).to.include({ Action: 'shutdown', Status: 'Complete' });
    expect(end.Message).to.match(/^forced: powered off .*did not power off within 2 s/);
    await waitFor(async () => !processAlive(pid), 10000, 'QEMU to exit');
  });
});
