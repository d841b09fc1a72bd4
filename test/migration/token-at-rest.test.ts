/**
 * The target's bearer token never reaches the source's state file
 * (core/migration/target-tokens.ts): a move given `{url, token}` between two
 * agents with auth (QEMU under TCG, cold: no guest boots) leaves no row of
 * the state file holding the token, the job's included; and a move still
 * queued when its agent is killed (-9), whose token lived only in that
 * process, fails at the restart saying to ask again, with nothing copied.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { sqliteQuery } from '../support/sqlite-query.js';
import { underLoad } from '../support/load-budget.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { STATE_FILE } from '../../core/state/state-store.js';

const ENV = { HYPERKERN_QEMU_ACCEL: 'tcg' };
const TOKEN_A = `source-token-${randomBytes(8).toString('hex')}`;
const TOKEN_B = `target-token-${randomBytes(8).toString('hex')}`;

/** Every row of the agent's state file, as stored. */
const stateRows = (agent: RunningAgent) => sqliteQuery<{ key: string; value: string }>(path.join(agent.dataDir, STATE_FILE), 'SELECT key, value FROM keyv');

describe('migration: the target token is kept off disk (QEMU, TCG)', function () {
  this.timeout(600_000);
  let world: QemuWorld;
  let a: RunningAgent | undefined;
  let b: RunningAgent | undefined;
  const asA = { authorization: `Bearer ${TOKEN_A}` };
  const asB = { authorization: `Bearer ${TOKEN_B}` };

  /** The source's config: its token, one job at a time (so a move can wait queued behind another guest's job). */
  const sourceConfig = () => {
    const config = tcgQemuConfig(world.imagesDir);
    return { ...config, auth: { tokens: [TOKEN_A] }, jobs: { ...config.jobs, concurrency: 1 } };
  };

  before(async function () {
    this.timeout(300_000);
    world = await QemuWorld.create();
    [a, b] = await Promise.all([
      startAgent({ config: sourceConfig(), env: ENV }),
      startAgent({ config: { ...tcgQemuConfig(world.imagesDir), auth: { tokens: [TOKEN_B] } }, env: ENV }),
    ]);
  });
  after(async () => {
    await Promise.all([disposeQemuTestAgent(a), disposeQemuTestAgent(b)]);
    await world?.dispose();
  });

  const createOff = async () => {
    const created = await a!.request('POST', '/guests?wait=120&start=false', { memory: 64, cpu: 1, disks: [{ size: 8 }] }, asA);
    expect(created.status, created.text).to.equal(200);
    return created.body.id as string;
  };

  it('a move with {url, token}: no row of the source state file holds the token, the job included', async () => {
    const id = await createOff();
    const moved = await a!.request('POST', `/guests/${id}/migrate?wait=120`, { url: b!.url, token: TOKEN_B }, asA);
    expect(moved.status, moved.text).to.equal(200);
    const jobId = moved.headers.get('x-guest-job-id')!;
    const done = (await a!.request('GET', `/jobs/${jobId}`, undefined, asA)).body;
    expect(done.Status, done.Message).to.equal('Complete');
    expect((await b!.request('GET', `/guests/${id}`, undefined, asB)).body).to.include({ id, state: 'off' });
    const rows = await stateRows(a!);
    const job = rows.find((r) => r.value.includes(jobId) && r.value.includes(b!.url));
    expect(job, "the move's job, naming the target, is in the state file").to.not.equal(undefined);
    expect(rows.filter((r) => r.value.includes(TOKEN_B) && !r.key.startsWith('migration:')).map((r) => r.key), "rows other than the move's record holding the target's token").to.deep.equal([]);
    // The source's record of the move holds the token while the move lasts; the job completes
    // once the target committed and the source tidies up (its record included) right after.
    await waitFor(async () => (await stateRows(a!)).every((r) => !r.value.includes(TOKEN_B)), underLoad(30_000), "the target's token gone from the source's state file");
    // The target's record of the move (which holds the source's token while it lasts) is gone once the source is done.
    await waitFor(async () => (await stateRows(b!)).every((r) => !r.value.includes(TOKEN_A)), underLoad(30_000), "the source's token gone from the target's state file");
  });

  it("a move queued when the source is killed (-9): its token died with the process; at the restart the job fails saying so, nothing copied", async () => {
    const id = await createOff();
    // Another guest's job holds the only job slot: a shutdown its guest (no OS, blank disk) never answers.
    const busy = await a!.request('POST', '/guests?wait=120', { memory: 64, cpu: 1, disks: [{ size: 8 }] }, asA);
    expect(busy.status, busy.text).to.equal(200);
    const shutdown = await a!.request('POST', `/guests/${busy.body.id}/shutdown`, undefined, asA);
    expect(shutdown.status, shutdown.text).to.equal(202);
    const shutdownJob = shutdown.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await a!.request('GET', `/jobs/${shutdownJob}`, undefined, asA)).body.Status === 'Running', underLoad(60_000), 'the shutdown running');
    const started = await a!.request('POST', `/guests/${id}/migrate`, { url: b!.url, token: TOKEN_B }, asA);
    expect(started.status, started.text).to.equal(202);
    const jobId = started.headers.get('x-guest-job-id')!;
    expect((await a!.request('GET', `/jobs/${jobId}`, undefined, asA)).body.Status).to.equal('Queued');

    await a!.kill9();
    const rows = await stateRows(a!);
    expect(rows.some((r) => r.value.includes(jobId) && r.value.includes(b!.url)), 'the queued job is in the state file').to.equal(true);
    expect(rows.filter((r) => r.value.includes(TOKEN_B)).map((r) => r.key), "rows holding the target's token").to.deep.equal([]);

    a = await startAgent({ config: sourceConfig(), env: ENV, dataDir: a!.dataDir });
    const ended = await waitFor(
      async () => {
        const job = (await a!.request('GET', `/jobs/${jobId}`, undefined, asA)).body;
        return job.Status === 'Complete' || job.Status === 'Error' ? job : undefined;
      },
      underLoad(120_000),
      'the requeued move to end',
    );
    expect(ended.Status).to.equal('Error');
    expect(ended.Message).to.match(/token was held in memory only .* ask for the move again/);
    expect((await a!.request('GET', `/guests/${id}`, undefined, asA)).body).to.include({ id, state: 'off' });
    expect((await b!.request('GET', `/guests/${id}`, undefined, asB)).status).to.equal(404);
    expect((await a!.request('GET', `/migrations/${jobId}`, undefined, asA)).status, 'no record on the source').to.equal(404);
    expect((await b!.request('GET', `/migrations/${jobId}`, undefined, asB)).status, 'no record on the target').to.equal(404);
  });
});
