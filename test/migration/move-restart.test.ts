/**
 * A move cut off by an agent's death (kill -9) mid-copy, resolved when it
 * starts again (docs/migration.md): the guest ends running on the source,
 * where it was, without a reboot, and the target keeps nothing (no QEMU, no
 * files, no guest, no record). The source killed during the RAM copy; the
 * target killed during it. The fault suite (faults*.test.ts) covers the
 * other phases and the link.
 */
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { tcgQemuConfig } from '../support/configs.js';
import { CONSOLE_PROMPT, INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { openConsole, type ConsoleViewerClient } from '../support/console-client.js';
import { disposeQemuTestAgent } from '../qemu/kill-test-qemus.js';
import { QemuWorld } from '../qemu/world.js';
import { FIRST_BOOT_MS, underLoad } from '../support/load-budget.js';

const PROMPT_AT_END = new RegExp(`${CONSOLE_PROMPT}(\\x1b\\[6n)?$`);
const ENV = { HYPERKERN_QEMU_ACCEL: 'tcg' };


/** The agent again on its data dir and port (the other agent's record names its URL). */
async function restart(agent: RunningAgent, imagesDir: string): Promise<RunningAgent> {
  const port = new URL(agent.url).port;
  return startAgent({ config: tcgQemuConfig(imagesDir), dataDir: agent.dataDir, env: ENV, args: ['--listen', `127.0.0.1:${port}`] });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('migration: an agent killed mid-move (QEMU, TCG)', function () {
  this.timeout(900_000);
  let world: QemuWorld;
  let a: RunningAgent | undefined;
  let b: RunningAgent | undefined;
  const viewers: ConsoleViewerClient[] = [];
  let id = '';

  before(async function () {
    this.timeout(600_000);
    world = await QemuWorld.create();
    [a, b] = await Promise.all([startAgent({ config: tcgQemuConfig(world.imagesDir), env: ENV }), startAgent({ config: tcgQemuConfig(world.imagesDir), env: ENV })]);
    const created = await a.request('POST', '/guests?wait=300', { memory: 128, cpu: 1, disks: [{ size: 16 }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    id = created.body.id;
    const viewer = await openConsole(a.url, id);
    viewers.push(viewer);
    await viewer.waitFor(new RegExp(INIT_REACHED), FIRST_BOOT_MS);
    await viewer.waitFor(PROMPT_AT_END, underLoad(60_000));
  });
  after(async () => {
    await Promise.all(viewers.map((v) => v.close()));
    await Promise.all([disposeQemuTestAgent(a), disposeQemuTestAgent(b)]);
    await world?.dispose();
  });

  /** Starts a slow move (1 MiB/s) and resolves once its RAM copy has begun. */
  const moveUntilMemory = async (): Promise<string> => {
    const started = await a!.request('POST', `/guests/${id}/migrate`, { url: b!.url, bandwidth: 1 });
    expect(started.status, started.text).to.equal(202);
    const jobId = started.headers.get('x-guest-job-id')!;
    await until('the RAM copy', underLoad(60_000), async () => {
      const job = (await a!.request('GET', `/jobs/${jobId}`)).body;
      expect(job.Status, job.Message).to.be.oneOf(['Queued', 'Running']);
      return job.Migration?.phase === 'memory' && job.Migration.bytesSent > 0 ? true : undefined;
    });
    return jobId;
  };

  /** The guest runs on the source, answering on its console without a reboot; the target has nothing of it. */
  const onSourceOnly = async (jobId: string) => {
    await until('the guest running on the source', underLoad(120_000), async () => ((await a!.request('GET', `/guests/${id}`)).body.state === 'running' ? true : undefined));
    await until('the target to drop its copy', underLoad(60_000), async () => ((await readdir(path.join(b!.dataDir, 'plugins', 'qemu')).catch(() => [] as string[])).includes(id) ? undefined : true));
    expect((await b!.request('GET', `/guests/${id}`)).status).to.equal(404);
    expect((await b!.request('GET', `/migrations/${jobId}`)).status, 'no record on the target').to.equal(404);
    expect((await a!.request('GET', `/migrations/${jobId}`)).status, 'no record on the source').to.equal(404);
    const viewer = await openConsole(a!.url, id);
    viewers.push(viewer);
    viewer.type('echo alive-$((40+2))\r');
    await viewer.waitFor(/alive-42\r\n/, underLoad(30_000));
    expect(viewer.received().toString('latin1'), 'no reboot').to.not.include(INIT_REACHED);
  };

  it('the source killed during the RAM copy: at its restart the move is undone', async () => {
    const jobId = await moveUntilMemory();
    await a!.kill9();
    a = await restart(a!, world.imagesDir);
    await onSourceOnly(jobId);
    const job = (await a.request('GET', `/jobs/${jobId}`)).body;
    expect(job.Status).to.equal('Error');
  });

  it('the target killed during the RAM copy: at its restart it drops its copy, the source keeps the guest', async () => {
    const jobId = await moveUntilMemory();
    await b!.kill9();
    b = await restart(b!, world.imagesDir);
    const job = await until('the job to end', underLoad(180_000), async () => {
      const body = (await a!.request('GET', `/jobs/${jobId}`)).body;
      return body.Status === 'Complete' || body.Status === 'Error' ? body : undefined;
    });
    expect(job.Status, job.Message).to.equal('Error');
    await onSourceOnly(jobId);
  });
});
