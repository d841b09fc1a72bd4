/**
 * /health counts every job that ended since start, by outcome, even when
 * jobs.history has pruned the jobs themselves: how a client (and the
 * bench) accounts for more jobs than the log keeps.
 */
import { expect } from 'chai';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

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
});
