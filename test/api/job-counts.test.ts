/**
 * /health counts every job that ended since start, by outcome, even when
 * jobs.history has pruned the jobs themselves: how a client (and the
 * bench) accounts for more jobs than the log keeps.
 */
import { expect } from 'chai';
import { waitFor, type TestAgent } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

/** /health's queued and running counts, and the same counted from GET /jobs. */
async function counts(agent: TestAgent): Promise<{ health: { queued: number; running: number }; listed: { queued: number; running: number } }> {
  const { queued, running } = (await agent.request('GET', '/health')).body.jobs;
  const jobs = (await agent.request('GET', '/jobs')).body as Array<{ Status: string }>;
  return { health: { queued, running }, listed: { queued: jobs.filter((j) => j.Status === 'Queued').length, running: jobs.filter((j) => j.Status === 'Running').length } };
}

describe('job counts in /health', function () {
  this.timeout(60_000);
  const agents = agentsPerTest();

  it('counts Complete and failed jobs since start, beyond what jobs.history keeps', async () => {
    const agent = await agents.inProcess({ config: simulatorConfig({ simulator: { failures: { suspend: 'simulated suspend failure' } }, jobs: { history: 2 } }) });
    const created = await agent.request('POST', '/guests?wait=30', {});
    expect(created.status).to.equal(200);
    expect(created.body.state, 'create boots the guest').to.equal('running');
    for (let i = 0; i < 3; i++) expect((await agent.request('POST', `/guests/${created.body.id}/reboot?wait=30`)).status).to.equal(200);
    expect((await agent.request('POST', `/guests/${created.body.id}/suspend?wait=30`)).status, "a failed job answers ?wait with 500 HK_ERR_JOB_FAILED").to.equal(500);

    const { jobs } = (await agent.request('GET', '/health')).body;
    expect(jobs).to.deep.equal({ queued: 0, running: 0, complete: 4, failed: 1 });
    // The log itself kept only the newest two.
    expect((await agent.request('GET', '/jobs')).body).to.have.length(2);
  });

  it('agrees with GET /jobs right after a restart that requeues the last run\'s jobs', async () => {
    // Every start takes 30 s, so nothing changes while the two are compared.
    const config = simulatorConfig({ jobs: { shutdownGraceSeconds: 1 } });
    const first = await agents.spawn({ config });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await first.request('POST', '/guests?wait=10&start=false', { memory: 128, metadata: { 'simulator.delay.start': '30000' } });
      expect(created.status, created.text).to.equal(200);
      ids.push(created.body.id);
    }
    // Per guest: one start running, two queued behind it.
    const jobIds = [];
    for (const id of ids) for (let i = 0; i < 3; i++) jobIds.push((await first.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!);
    await waitFor(async () => (await counts(first)).listed.running === 3, 10_000, 'one start running per guest');
    const before = await counts(first);
    expect(before.health).to.deep.equal(before.listed);
    expect(before.health).to.deep.equal({ queued: 6, running: 3 });
    await first.kill9();

    const second = await agents.spawn({ config, dataDir: first.dataDir });
    // The cut-off starts ended as interrupted; the queued ones are requeued and the next of each guest runs.
    for (let i = 0; i < 5; i++) {
      const now = await counts(second);
      expect(now.health, `check ${i + 1}: /health says what GET /jobs lists`).to.deep.equal(now.listed);
      expect(now.health.queued + now.health.running, 'every requeued job counted').to.equal(6);
    }
    const interrupted = (await second.request('GET', `/jobs/${jobIds[0]}`)).body;
    expect(interrupted).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
  });
});
