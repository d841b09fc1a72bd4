/**
 * Every power action's state rules (sync guard -> 409 with a message that
 * says what the action needs), its transition, ?wait, stage timeouts and
 * failures, per-guest FIFO order, and metrics, on the simulator backend.
 */
import { expect } from 'chai';
import { waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

describe('API: lifecycle actions and metrics', function () {
  const agent = suiteAgent(() => ({ config: simulatorConfig({ jobs: { stageTimeoutSeconds: 2 } }) }));

  async function newGuest(metadata: Record<string, string> = {}) {
    // Left off (?start=false): each test starts it when it needs it running.
    const res = await agent.request('POST', '/guests?wait=10&start=false', { memory: 128, cpu: 2, disks: [{ size: 10 }], nics: [{}], metadata });
    expect(res.status, res.text).to.equal(200);
    return res.body.id as string;
  }
  async function act(id: string, action: string, query = 'wait=10') {
    return agent.request('POST', `/guests/${id}/${action}?${query}`);
  }
  async function stateOf(id: string): Promise<string> {
    return (await agent.request('GET', `/guests/${id}`)).body.state;
  }

  it('walks a guest through start, suspend, resume, reboot, restart, shutdown, start, poweroff', async () => {
    const id = await newGuest();
    const steps: Array<[string, string]> = [
      ['start', 'running'],
      ['suspend', 'suspended'],
      ['start', 'running'],
      ['reboot', 'running'],
      ['restart', 'running'],
      ['shutdown', 'shutdown'],
      ['start', 'running'],
      ['poweroff', 'off'],
    ];
    for (const [action, expected] of steps) {
      const res = await act(id, action);
      expect(res.status, `${action}: ${res.text}`).to.equal(200);
      expect(res.body.state, `state after ${action}`).to.equal(expected);
      expect(res.headers.get('x-guest-job-status')).to.equal('Complete');
      expect(await stateOf(id)).to.equal(expected);
    }
  });

  it('answers 202 with the guest and X-Guest-Job-ID without ?wait', async () => {
    const id = await newGuest();
    const res = await agent.request('POST', `/guests/${id}/start`);
    expect(res.status).to.equal(202);
    expect(res.body.id).to.equal(id);
    const jobId = res.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await agent.request('GET', `/jobs/${jobId}`)).body.Status === 'Complete', 5000, 'start job');
    expect(await stateOf(id)).to.equal('running');
  });

  describe('state rules (409 from the sync part, before any job)', () => {
    const rules: Array<{ action: string; from: string; needs: RegExp }> = [
      { action: 'start', from: 'running', needs: /guest is running; start needs off, shutdown, suspended, crashed or error/ },
      { action: 'shutdown', from: 'off', needs: /guest is off; shutdown needs running/ },
      { action: 'reboot', from: 'off', needs: /guest is off; reboot needs running/ },
      { action: 'suspend', from: 'off', needs: /guest is off; suspend needs running/ },
      { action: 'restart', from: 'off', needs: /guest is off; restart needs running or suspended/ },
      { action: 'poweroff', from: 'off', needs: /guest is off; poweroff needs running, suspended, shutdown or crashed/ },
    ];
    for (const rule of rules) {
      it(`${rule.action} on a guest that is ${rule.from} answers 409 and queues nothing`, async () => {
        const id = await newGuest();
        if (rule.from === 'running') expect((await act(id, 'start')).status).to.equal(200);
        const jobsBefore = (await agent.request('GET', `/guests/${id}/jobs`)).body.length;
        const res = await act(id, rule.action, '');
        expect(res.status).to.equal(409);
        expect(res.body).to.include({ code: 409 });
        expect(res.body.message).to.match(rule.needs);
        expect(res.headers.get('x-guest-job-id')).to.equal(null);
        expect((await agent.request('GET', `/guests/${id}/jobs`)).body.length, 'no job queued').to.equal(jobsBefore);
      });
    }

    it('404s for actions on an unknown guest', async () => {
      const res = await agent.request('POST', '/guests/00000000-0000-4000-8000-000000000000/start');
      expect(res.status).to.equal(404);
    });
  });

  it('a shutdown the guest ignores ends the job as Error after ?timeout and the guest keeps running', async () => {
    const id = await newGuest({ 'simulator.acpi': 'ignore' });
    await act(id, 'start');
    const res = await act(id, 'shutdown', 'timeout=1&wait=10');
    expect(res.status, 'a failed job awaited with ?wait answers 500 with the job').to.equal(500);
    expect(res.body.error).to.equal('HK_ERR_JOB_FAILED');
    expect(res.body.job.Status).to.equal('Error');
    expect(res.body.message).to.match(/guest did not power off within 1 s \(does it handle ACPI\?\)/);
    expect(await stateOf(id)).to.equal('running');
  });

  it('a stage slower than its timeout fails the job with a message naming the stage', async () => {
    const id = await newGuest({ 'simulator.delay.start': '5000' });
    const started = Date.now();
    const res = await act(id, 'start');
    expect(res.status).to.equal(500);
    expect(res.body.job.Message).to.equal('stage simulator.start did not finish within 2 s');
    expect(Date.now() - started, 'the job ended at the 2 s timeout, not after the 5 s stage').to.be.below(4500);
    expect(await stateOf(id)).to.equal('off');
  });

  it('?wait shorter than the job answers 202 with the job still running', async () => {
    const id = await newGuest({ 'simulator.delay.start': '1500' });
    const res = await act(id, 'start', 'wait=0.2');
    expect(res.status).to.equal(202);
    expect(res.headers.get('x-guest-job-status')).to.equal('Running');
    const jobId = res.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await agent.request('GET', `/jobs/${jobId}`)).body.Status === 'Complete', 5000, 'start job');
  });

  it('refuses a malformed ?wait or ?timeout with 400', async () => {
    const id = await newGuest();
    expect((await act(id, 'start', 'wait=soon')).status).to.equal(400);
    expect((await act(id, 'start', 'timeout=-1')).status).to.equal(400);
  });

  it("runs one guest's jobs one at a time, in order, while other guests proceed", async () => {
    const slow = await newGuest({ 'simulator.delay.start': '600', 'simulator.delay.suspend': '300' });
    const fast = await newGuest();
    const r1 = await act(slow, 'start', '');
    // Guard sees the current state (off): suspend would 409; delete has no guard.
    const r2 = await agent.request('DELETE', `/guests/${slow}`);
    const r3 = await act(fast, 'start', 'wait=5');
    expect(r3.status, 'the other guest is not held behind the slow one').to.equal(200);
    const first = r1.headers.get('x-guest-job-id')!;
    const second = r2.headers.get('x-guest-job-id')!;
    const jobSecondWhileFirstRuns = (await agent.request('GET', `/jobs/${second}`)).body;
    expect(jobSecondWhileFirstRuns.Status, 'the second job waits for the first').to.equal('Queued');
    const done = await waitFor(async () => {
      const b = (await agent.request('GET', `/jobs/${second}`)).body;
      return b.Status === 'Complete' ? b : undefined;
    }, 5000, 'the delete job');
    const a = (await agent.request('GET', `/jobs/${first}`)).body;
    expect(Date.parse(done.StartedAt), 'second job starts after the first ended').to.be.at.least(Date.parse(a.UpdatedAt));
  });

  describe('metrics', () => {
    it('cpu: one entry per vCPU, growing while running, standing still when off', async () => {
      const id = await newGuest();
      const off = await agent.request('GET', `/guests/${id}/metrics/cpu`);
      expect(off.status).to.equal(200);
      expect(off.body).to.have.length(2);
      expect(off.body[0]).to.deep.equal({ cpu_time: 0, vcpu_time: 0 });
      await act(id, 'start');
      await new Promise((r) => setTimeout(r, 300));
      const a = (await agent.request('GET', `/guests/${id}/metrics/cpu`)).body;
      await new Promise((r) => setTimeout(r, 300));
      const b = (await agent.request('GET', `/guests/${id}/metrics/cpu`)).body;
      expect(b[0].vcpu_time).to.be.above(a[0].vcpu_time);
      expect(b[0].cpu_time).to.be.at.least(b[0].vcpu_time);
    });

    it('nic: a map keyed by NIC name with mistify fields; disk: a map keyed by device', async () => {
      const id = await newGuest();
      await act(id, 'start');
      await new Promise((r) => setTimeout(r, 200));
      const nic = (await agent.request('GET', `/guests/${id}/metrics/nic`)).body;
      expect(nic).to.have.keys('net0');
      expect(nic.net0).to.have.keys('name', 'rx_bytes', 'rx_packets', 'rx_errors', 'rx_drops', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_drops');
      expect(nic.net0.rx_bytes).to.be.above(0);
      const disk = (await agent.request('GET', `/guests/${id}/metrics/disk`)).body;
      expect(disk).to.have.keys('vda');
      expect(disk.vda).to.have.keys('disk', 'read_ops', 'read_bytes', 'read_time', 'write_ops', 'write_bytes', 'write_time', 'flush_ops', 'flush_time');
      expect(disk.vda.disk).to.equal('vda');
    });

    it('are not queued behind a running job of the same guest', async () => {
      const id = await newGuest({ 'simulator.delay.reboot': '1500' });
      await act(id, 'start');
      const reboot = await act(id, 'reboot', '');
      expect(reboot.status).to.equal(202);
      const jobUrl = `/jobs/${reboot.headers.get('x-guest-job-id')}`;
      // "Running" shows once it is durable, a moment after the 202.
      await waitFor(async () => (await agent.request('GET', jobUrl)).body.Status === 'Running', 1000, 'reboot job running');
      const started = Date.now();
      const res = await agent.request('GET', `/guests/${id}/metrics/cpu`);
      expect(res.status).to.equal(200);
      expect(Date.now() - started, 'metrics answered while the reboot job runs').to.be.below(500);
      expect((await agent.request('GET', jobUrl)).body.Status).to.equal('Running');
    });

    it('a failing metrics stage answers 502 naming the stage; unknown guest 404', async () => {
      const id = await newGuest({ 'simulator.fail': 'diskMetrics' });
      const res = await agent.request('GET', `/guests/${id}/metrics/disk`);
      expect(res.status).to.equal(502);
      expect(res.body.message).to.equal('stage simulator.diskMetrics failed: simulated failure of diskMetrics');
      expect((await agent.request('GET', '/guests/00000000-0000-4000-8000-000000000000/metrics/cpu')).status).to.equal(404);
    });

    it('a metrics stage slower than its timeout answers 504 naming the stage, at the timeout', async () => {
      const id = await newGuest({ 'simulator.delay.cpuMetrics': '5000' });
      const started = Date.now();
      const res = await agent.request('GET', `/guests/${id}/metrics/cpu`);
      expect(res.status).to.equal(504);
      expect(res.body.error).to.equal('HK_ERR_STAGE_TIMEOUT');
      expect(res.body.message).to.equal('stage simulator.cpuMetrics did not finish within 2 s');
      expect(Date.now() - started, 'answered at the 2 s timeout, not after the 5 s stage').to.be.below(4500);
    });

    it('a delayed metrics stage answers after its delay, and one set to fail fails after it', async () => {
      const slow = await newGuest({ 'simulator.delay.nicMetrics': '300' });
      const started = Date.now();
      const res = await agent.request('GET', `/guests/${slow}/metrics/nic`);
      expect(res.status).to.equal(200);
      expect(Date.now() - started).to.be.at.least(300);
      expect(Object.keys(res.body)).to.have.length(1);
      const failing = await newGuest({ 'simulator.delay.cpuMetrics': '300', 'simulator.fail': 'cpuMetrics' });
      const failed = await agent.request('GET', `/guests/${failing}/metrics/cpu`);
      expect(failed.status).to.equal(502);
      expect(failed.body.message).to.equal('stage simulator.cpuMetrics failed: simulated failure of cpuMetrics');
    });
  });

  it('a metadata PATCH made while a job runs survives the stage that returns the guest', async () => {
    const id = await newGuest({ 'simulator.delay.start': '500' });
    const start = await act(id, 'start', '');
    await agent.request('PATCH', `/guests/${id}/metadata`, { during: 'job' });
    await waitFor(async () => (await agent.request('GET', `/jobs/${start.headers.get('x-guest-job-id')}`)).body.Status === 'Complete', 5000, 'start');
    const guest = (await agent.request('GET', `/guests/${id}`)).body;
    expect(guest.state).to.equal('running');
    expect(guest.metadata.during, 'the PATCH was not overwritten by the stage result').to.equal('job');
  });
});
