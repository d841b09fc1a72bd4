/**
 * A lifecycle job's last stage result and the job's end land in one
 * transaction (core/jobs/lifecycle-jobs.ts): the change feed publishes each
 * commit's events together, in one synchronous pass, so the guest's change
 * and the job's completion arrive in one batch, the change first, and the
 * job's start in an earlier one. The real kernel in process, on the
 * simulator, with its real SQLite file.
 */
import { expect } from 'chai';
import type { KernelEvent } from '../../core/events/kernel-event.js';
import { makeTempDir, removeDir } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';
import { startInProcessAgent, type InProcessAgent } from '../support/in-process-agent.js';

describe('lifecycle job: last stage result committed with the job end', function () {
  this.timeout(30000);
  let dir: string;
  let agent: InProcessAgent;
  before(async () => {
    dir = await makeTempDir();
    agent = await startInProcessAgent({ config: simulatorConfig(), dataDir: dir });
  });
  after(async () => {
    await agent?.stop();
    await removeDir(dir);
  });

  it("start, suspend and resume: each guest change, then its job's completion, in one commit after the job's start", async () => {
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 128 });
    expect(created.status, created.text).to.equal(200);
    const id: string = created.body.id;
    // Each publish (one commit) is delivered in one synchronous pass: a microtask ends the batch.
    const seen: Array<{ batch: number; event: KernelEvent }> = [];
    let batch = 0;
    let open = false;
    const unsubscribe = agent.kernel.feed.subscribe((event) => {
      if (!open) {
        open = true;
        queueMicrotask(() => {
          open = false;
          batch++;
        });
      }
      if (event.guest === id) seen.push({ batch, event });
    });
    try {
      for (const [action, state] of [['start', 'running'], ['suspend', 'suspended'], ['resume', 'running']] as const) {
        const res = await agent.request('POST', `/guests/${id}/${action}?wait=10`);
        expect(res.status, res.text).to.equal(200);
        expect(res.body.state, `${action} answers the stage's state`).to.equal(state);
        expect((await agent.request('GET', `/guests/${id}`)).body.state, `${action}: the registry holds it`).to.equal(state);
        const jobId = res.headers.get('x-guest-job-id');
        const ofJob = (type: string) => seen.find((s) => s.event.type === type && (s.event.data as { job?: { ID: string } }).job?.ID === jobId);
        const started = ofJob('job.started');
        const completed = ofJob('job.completed');
        expect(started, `${action}: job.started`).to.not.equal(undefined);
        expect(completed, `${action}: job.completed`).to.not.equal(undefined);
        const commit = seen.filter((s) => s.batch === completed!.batch).map((s) => s.event);
        expect(commit.map((e) => e.type), `${action}: the end's commit`).to.deep.equal(['guest.changed', 'job.completed']);
        expect((commit[0].data as { guest: { state: string } }).guest.state).to.equal(state);
        expect(started!.batch, `${action}: the start committed before`).to.be.lessThan(completed!.batch);
      }
    } finally {
      unsubscribe();
    }
  });
});
