/**
 * Image jobs run on the one job engine, as lifecycle jobs do: the same
 * queue positions, the same cancel (queued: it leaves its queue at once;
 * running: its stage's AbortSignal), the same telemetry, and /health's
 * counts are the job log's. In-process agent with the images plugin and a
 * slow loopback image server; jobs.concurrency 1 so a second image's fetch
 * waits for the global slot.
 */
import { expect } from 'chai';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeDir, waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig, withImages } from '../support/configs.js';
import { makeQcow2 } from '../support/image-files.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';

describe('image jobs on the job engine', function () {
  this.timeout(120_000);
  let work: string;
  let imagesDir: string;
  let server: ImageServer;

  before(async () => {
    work = await makeTempDir('hk-image-jobs-');
    const served = path.join(work, 'served');
    imagesDir = path.join(work, 'images');
    await mkdir(served);
    // 4 MiB of data: the slow server sends 64 KiB every 100 ms, about 6 s.
    await makeQcow2(served, 'base.qcow2', 64, 4);
    server = await startImageServer(served);
  });
  const agent = suiteAgent(() => ({ config: withImages(simulatorConfig({ jobs: { concurrency: 1 } }), { imagesDir }) }));

  after(async () => {
    await server?.close();
    await removeDir(work);
  });

  const job = async (id: string) => (await agent.request('GET', `/jobs/${id}`)).body;
  /** /health's counts and what GET /jobs lists, read back to back. */
  const counts = async () => {
    const health = (await agent.request('GET', '/health')).body.jobs;
    const jobs = (await agent.request('GET', '/jobs')).body as Array<{ Status: string }>;
    return { health: { queued: health.queued, running: health.running }, listed: { queued: jobs.filter((j) => j.Status === 'Queued').length, running: jobs.filter((j) => j.Status === 'Running').length } };
  };

  it('cancels a queued fetch at once and a running one through its AbortSignal, as any job; /health counts them as GET /jobs lists them', async () => {
    const slow = await agent.request('POST', '/images', { id: 'first', source: `${server.url}/slow/base.qcow2` });
    expect(slow.status, slow.text).to.equal(202);
    const running = slow.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await job(running)).Status === 'Running', 30_000, 'the first fetch to run');
    expect((await job(running)).Stage, 'a running image job shows its stage').to.equal('images.fetch');

    // The only slot is taken: the second image's fetch waits, first in its own queue.
    const waiting = await agent.request('POST', '/images', { id: 'second', source: `${server.url}/base.qcow2` });
    expect(waiting.status, waiting.text).to.equal(202);
    const queued = waiting.headers.get('x-guest-job-id')!;
    expect(await job(queued)).to.include({ Status: 'Queued', QueuePosition: 1 });
    const during = await counts();
    expect(during.health, 'the health counts are the listed jobs').to.deep.equal(during.listed);
    expect(during.health).to.deep.equal({ queued: 1, running: 1 });

    const cancelled = await agent.request('DELETE', `/jobs/${queued}`);
    expect(cancelled.status, cancelled.text).to.equal(200);
    expect(cancelled.body).to.include({ ID: queued, Status: 'Error', Message: 'cancelled', StartedAt: ZERO_TIME });
    // Its claim on the image ended with it: the id can be fetched again.
    const again = await agent.request('POST', '/images', { id: 'second', source: `${server.url}/base.qcow2` });
    expect(again.status, again.text).to.equal(202);
    const retried = again.headers.get('x-guest-job-id')!;

    const stopped = await agent.request('DELETE', `/jobs/${running}?wait=30`);
    expect(stopped.status, stopped.text).to.equal(200);
    expect(stopped.body).to.include({ ID: running, Status: 'Error', Message: 'cancelled' });
    expect((await agent.request('GET', '/images/first')).status, 'a cancelled fetch keeps nothing').to.equal(404);
    expect((await readdir(imagesDir)).filter((n) => n.startsWith('.')), 'no partial file').to.deep.equal([]);

    const end = await waitFor(async () => ((await job(retried)).Status === 'Complete' ? job(retried) : undefined), 30_000, 'the retried fetch to complete');
    expect(end.Message).to.match(/image second is ready/);
    const after = await counts();
    expect(after.health).to.deep.equal(after.listed);
    expect(after.health).to.deep.equal({ queued: 0, running: 0 });
  });

  it('times image jobs and their stages for GET /metrics as it does lifecycle jobs', async () => {
    const text = (await agent.request('GET', '/metrics')).text;
    const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').pop() ?? NaN);
    expect(value(/^hyperkern_jobs_total\{action="fetchImage",outcome="complete"\}/), 'completed fetches counted').to.be.at.least(1);
    expect(value(/^hyperkern_jobs_total\{action="fetchImage",outcome="cancelled"\}/), 'the cancelled running fetch counted').to.be.at.least(1);
    expect(value(/^hyperkern_job_duration_seconds_count\{action="fetchImage",outcome="complete"\}/)).to.be.at.least(1);
    expect(value(/^hyperkern_stage_duration_seconds_count\{stage="images.fetch"\}/), 'the fetch stage timed').to.be.at.least(2);
    expect(value(/^hyperkern_jobs_queued /)).to.equal(0);
  });
});
