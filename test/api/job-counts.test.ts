/**
 * /health counts every job that ended since start, by outcome, even when
 * jobs.history has pruned the jobs themselves: how a client (and the
 * bench) accounts for more jobs than the log keeps.
 */
import { expect } from 'chai';
import { waitFor, type TestAgent } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

type Counts = { queued: number; running: number };

/** Every job's status by ID, as GET /jobs lists it. */
async function statuses(agent: TestAgent): Promise<Map<string, string>> {
  const jobs = (await agent.request('GET', '/jobs')).body as Array<{ ID: string; Status: string }>;
  return new Map(jobs.map((j) => [j.ID, j.Status]));
}

const countOf = (listed: Map<string, string>): Counts => ({
  queued: [...listed.values()].filter((s) => s === 'Queued').length,
  running: [...listed.values()].filter((s) => s === 'Running').length,
});

/**
 * /health's queued and running counts, and the same counted from GET /jobs,
 * at one moment: /health is read between two listings that agree job for
 * job, so no job changed state while the two were read. Jobs move on their
 * own (a requeued job is marked Running after the agent listens, later
 * still on a loaded host): a listing that changed under the read is taken
 * again, not a mismatch.
 */
async function counts(agent: TestAgent): Promise<{ health: Counts; listed: Counts }> {
  for (let attempt = 1; ; attempt++) {
    const before = await statuses(agent);
    const { queued, running } = (await agent.request('GET', '/health')).body.jobs;
    const after = await statuses(agent);
    const settled = before.size === after.size && [...before].every(([id, status]) => after.get(id) === status);
    if (settled) return { health: { queued, running }, listed: countOf(after) };
    if (attempt === 50) throw new Error('the jobs changed state during each of 50 reads of /health and GET /jobs');
  }
}

/** A start that outlasts the test by far, however loaded the host: no job ends while the counts are compared. */
const START_MS = 600_000;

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
    // Every start takes START_MS, so no job ends while they are compared (a stop cuts them off after 1 s).
    const config = simulatorConfig({ jobs: { shutdownGraceSeconds: 1 } });
    const first = await agents.spawn({ config });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await first.request('POST', '/guests?wait=10&start=false', { memory: 128, metadata: { 'simulator.delay.start': String(START_MS) } });
      expect(created.status, created.text).to.equal(200);
      ids.push(created.body.id);
    }
    // Per guest: one start running, two queued behind it.
    const jobIds = [];
    for (const id of ids) for (let i = 0; i < 3; i++) jobIds.push((await first.request('POST', `/guests/${id}/start`)).headers.get('x-guest-job-id')!);
    await waitFor(async () => (await counts(first)).listed.running === 3, 60_000, 'one start running per guest');
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
    await waitFor(async () => (await counts(second)).listed.running === 3, 60_000, 'the next start of each guest running');
    const settled = await counts(second);
    expect(settled.health).to.deep.equal(settled.listed);
    expect(settled.health).to.deep.equal({ queued: 3, running: 3 });
    const interrupted = (await second.request('GET', `/jobs/${jobIds[0]}`)).body;
    expect(interrupted).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
  });
});
