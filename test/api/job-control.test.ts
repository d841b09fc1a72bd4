/**
 * Job control through the real agent on the simulator: cancelling a queued
 * job and a long running stage, queue positions and current stages, forced
 * shutdown of a guest that ignores ACPI, resume.
 */
import { expect } from 'chai';
import { waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { readSse } from '../support/sse-reader.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';

describe('job control (simulator)', function () {
  this.timeout(60000);
  const agent = suiteAgent(() => ({ config: simulatorConfig() }));

  async function guest(metadata: Record<string, string> = {}): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=10&start=false', { memory: 128, metadata });
    expect(res.status, res.text).to.equal(200);
    return res.body.id;
  }
  const job = async (id: string) => (await agent.request('GET', `/jobs/${id}`)).body;

  it('cancels a queued job: it leaves the queue and ends Error "cancelled"; positions move up', async () => {
    const id = await guest({ 'simulator.delay.start': '3000' });
    const first = (await agent.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!;
    const second = (await agent.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!;
    const third = (await agent.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!;
    await waitFor(async () => (await job(first)).Status === 'Running', 5000, 'the first start to run');
    expect((await job(first)).Stage).to.equal('simulator.start');
    expect((await job(second)).QueuePosition).to.equal(1);
    expect((await job(third)).QueuePosition).to.equal(2);
    const events = await readSse(`${agent.url}/events?guest=${id}&type=job.failed`);

    const res = await agent.request('DELETE', `/jobs/${second}`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ ID: second, Status: 'Error', Message: 'cancelled', StartedAt: ZERO_TIME });
    expect((await job(third)).QueuePosition, 'the next job moved up').to.equal(1);
    const again = await agent.request('DELETE', `/jobs/${second}`);
    expect(again.status).to.equal(409);
    expect(again.body.message).to.match(/Error; only a queued or running job/);

    await waitFor(async () => (await job(third)).Status !== 'Queued' && (await job(third)).Status !== 'Running', 20000, 'the third job to end');
    expect((await job(first)).Status).to.equal('Complete');
    expect((await job(second)).StartedAt, 'the cancelled job never ran').to.equal(ZERO_TIME);
    await waitFor(async () => events.messages.length > 0, 5000, 'the job.failed event');
    events.close();
    expect(JSON.parse(events.messages[0].data).data.job).to.include({ ID: second, Message: 'cancelled' });
  });

  it('cancels a long running stage: its AbortSignal fires and the job ends when the stage returns', async () => {
    const id = await guest({ 'simulator.delay.start': '30000' });
    const jobId = (await agent.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!;
    await waitFor(async () => (await job(jobId)).Status === 'Running', 5000, 'the start to run');
    const t0 = Date.now();
    const res = await agent.request('DELETE', `/guests/${id}/jobs/${jobId}?wait=10`);
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ Status: 'Error', Message: 'cancelled' });
    expect(Date.now() - t0, 'the 30 s stage stopped on the signal').to.be.lessThan(10000);
    expect((await agent.request('GET', `/guests/${id}`)).body.state, 'the start did not happen').to.equal('off');
    expect((await agent.request('DELETE', '/jobs/no-such-job')).status).to.equal(404);
    expect((await agent.request('DELETE', `/guests/${id}/jobs/no-such-job`)).status).to.equal(404);
  });

  it('shutdown?force=true powers off a guest that ignores ACPI in the same job, and says so', async () => {
    const id = await guest({ 'simulator.acpi': 'ignore' });
    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).status).to.equal(200);
    const plain = await agent.request('POST', `/guests/${id}/shutdown?timeout=1&wait=20`);
    expect(plain.status, 'without force the shutdown fails').to.equal(500);
    expect(plain.body.details?.job?.Message ?? plain.body.message).to.match(/did not power off/);

    const forced = await agent.request('POST', `/guests/${id}/shutdown?timeout=1&force=true&wait=20`);
    expect(forced.status, forced.text).to.equal(200);
    expect(forced.body.state).to.equal('off');
    const jobId = forced.headers.get('x-guest-job-id')!;
    const end = await job(jobId);
    expect(end.Status).to.equal('Complete');
    expect(end.Action).to.equal('shutdown');
    expect(end.Message).to.match(/^forced: powered off/);
    expect(end.Message).to.match(/did not power off within 1 s/);
    expect((await agent.request('POST', `/guests/${id}/shutdown?force=maybe`)).status).to.equal(400);
  });

  it('resumes a suspended guest, and refuses to resume one that is not', async () => {
    const id = await guest();
    expect((await agent.request('POST', `/guests/${id}/start?wait=10`)).status).to.equal(200);
    const refused = await agent.request('POST', `/guests/${id}/resume`);
    expect(refused.status).to.equal(409);
    expect(refused.body.message).to.match(/resume needs suspended/);
    expect((await agent.request('POST', `/guests/${id}/suspend?wait=10`)).body.state).to.equal('suspended');
    const resumed = await agent.request('POST', `/guests/${id}/resume?wait=10`);
    expect(resumed.status, resumed.text).to.equal(200);
    expect(resumed.body.state).to.equal('running');
  });
});
