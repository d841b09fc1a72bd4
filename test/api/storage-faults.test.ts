/**
 * What the agent says is what is on disk. The data dir lives on a real,
 * tiny tmpfs that the test fills up: every write path then answers 5xx
 * HK_ERR_STORAGE and nothing it refused becomes visible, now, after space is
 * freed (a later good write must not carry a refused change along), or after
 * a restart. And one agent per data dir.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { removeDir, type TestAgent } from '../support/agent.js';
import { agentsPerTest } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { GuestRegistry } from '../../core/guests/guest-registry.js';
import { StateStore } from '../../core/state/state-store.js';
import { createLogger } from '../../core/logger.js';
import type { Guest } from '../../core/contract/wire-types.js';

const run = promisify(execFile);

/** Writes zeros until the filesystem is full; returns the filler's path. */
async function fillUp(dir: string): Promise<string> {
  const file = path.join(dir, 'filler');
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    // Bounded: the tmpfs is a few MiB, this allows for 1 GiB.
    for (let i = 0; i < 16384; i++) await handle.write(chunk);
    throw new Error(`${dir} did not fill up`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  // Small writes too, until not even one block is left.
  const small = await open(path.join(dir, 'filler-small'), 'w');
  try {
    for (let i = 0; i < 4096; i++) await small.write(Buffer.alloc(512));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await small.close();
  }
  return file;
}

async function freeUp(dir: string): Promise<void> {
  await rm(path.join(dir, 'filler'), { force: true });
  await rm(path.join(dir, 'filler-small'), { force: true });
}

describe('storage faults: a full data dir', function () {
  this.timeout(60000);
  let mountPoint: string;
  let mounted = false;

  before(async function () {
    mountPoint = await mkdtemp(path.join(tmpdir(), 'hyperkern-tmpfs-'));
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mountPoint]);
      mounted = true;
    } catch (error) {
      // Needs root (or CAP_SYS_ADMIN) to mount: elsewhere these tests cannot fill a filesystem safely.
      await removeDir(mountPoint);
      console.log(`      (skipped: cannot mount a tmpfs here: ${(error as Error).message.split('\n')[0]})`);
      this.skip();
    }
  });
  // Agents stop before the space is freed (their hook comes first).
  const agents = agentsPerTest();
  afterEach(async () => {
    if (mounted) await freeUp(mountPoint);
  });
  after(async () => {
    if (mounted) await run('umount', [mountPoint]);
    await removeDir(mountPoint);
  });

  async function start(dataDir: string): Promise<TestAgent> {
    return agents.inProcess({ config: simulatorConfig(), dataDir });
  }

  function expectStorageError(res: { status: number; body: any; text: string }, what: string, dataDir: string) {
    expect(res.status, `${what}: ${res.text}`).to.equal(500);
    expect(res.body.error, what).to.equal('HK_ERR_STORAGE');
    expect(res.body.message, `${what} names the cause`).to.match(/SQLITE_FULL/);
    expect(res.text, `${what} leaks no host path`).to.not.include(dataDir);
    expect(res.text, `${what} leaks no host path`).to.not.include('hyperkern.sqlite');
  }

  it('answers 5xx on every write path and changes nothing; recovers once space is freed; a restart shows the same', async () => {
    const dataDir = path.join(mountPoint, 'data');
    const agent = await start(dataDir);
    // A guest that exists before the disk fills, with some state to protect.
    const existing = await agent.request('POST', '/guests?wait=10&start=false', { metadata: { keep: 'me' } });
    expect(existing.status).to.equal(200);
    const id = existing.body.id as string;
    expect((await agent.request('PATCH', '/metadata', { site: 'lab' })).status).to.equal(200);
    const jobsBefore = (await agent.request('GET', '/jobs?limit=1000')).body.length;
    const guestBefore = (await agent.request('GET', `/guests/${id}`)).body;

    await fillUp(mountPoint);

    const newId = randomUUID();
    expectStorageError(await agent.request('POST', '/guests', { id: newId, memory: 256 }), 'create', dataDir);
    expect((await agent.request('GET', `/guests/${newId}`)).status, 'a refused create is not visible').to.equal(404);
    expectStorageError(await agent.request('PATCH', '/metadata', { refused: 'host' }), 'host metadata', dataDir);
    expectStorageError(await agent.request('PATCH', `/guests/${id}/metadata`, { refused: 'guest', keep: null }), 'guest metadata', dataDir);
    expectStorageError(await agent.request('POST', `/guests/${id}/start`), 'start', dataDir);
    expectStorageError(await agent.request('DELETE', `/guests/${id}`), 'delete', dataDir);

    expect((await agent.request('GET', '/metadata')).body).to.deep.equal({ site: 'lab' });
    expect((await agent.request('GET', `/guests/${id}`)).body, 'the guest is as it was').to.deep.equal(guestBefore);
    const jobs = (await agent.request('GET', '/jobs?limit=1000')).body as Array<{ Status: string }>;
    expect(jobs.length, 'no job was queued by a refused action').to.equal(jobsBefore);
    expect(jobs.filter((j) => j.Status === 'Queued')).to.deep.equal([]);
    expect((await agent.request('GET', '/guests')).body.map((g: { id: string }) => g.id)).to.deep.equal([id]);

    await freeUp(mountPoint);

    // A good write now carries none of the refused changes along.
    const host = await agent.request('PATCH', '/metadata', { later: 'yes' });
    expect(host.status).to.equal(200);
    expect(host.body).to.deep.equal({ site: 'lab', later: 'yes' });
    const guestPatch = await agent.request('PATCH', `/guests/${id}/metadata`, { later: 'yes' });
    expect(guestPatch.body).to.deep.equal({ keep: 'me', later: 'yes' });
    // The client's retry of the refused create is a new create, not an "idempotent" 200.
    const retry = await agent.request('POST', '/guests?wait=10', { id: newId, memory: 256 });
    expect(retry.status, retry.text).to.equal(200);
    expect(retry.headers.get('x-guest-job-status')).to.equal('Complete');
    const started = await agent.request('POST', `/guests/${id}/start?wait=10`);
    expect(started.status, started.text).to.equal(200);
    expect(started.body.state).to.equal('running');

    expect(await agent.stop()).to.equal(0);
    const again = await start(dataDir);
    expect((await again.request('GET', '/metadata')).body).to.deep.equal({ site: 'lab', later: 'yes' });
    const guests = (await again.request('GET', '/guests')).body as Array<{ id: string; state: string; metadata: Record<string, string> }>;
    expect(guests.map((g) => g.id).sort()).to.deep.equal([id, newId].sort());
    const reloaded = guests.find((g) => g.id === id)!;
    expect(reloaded.metadata).to.deep.equal({ keep: 'me', later: 'yes' });
    expect(reloaded.state).to.equal('running');
    const guestJobs = (await again.request('GET', `/guests/${id}/jobs`)).body as Array<{ Action: string; Status: string }>;
    expect(guestJobs.map((j) => `${j.Action}:${j.Status}`)).to.deep.equal(['start:Complete', 'create:Complete']);
  });

  it('refuses what a plugin reports through observe, leaving the guest as it was', async () => {
    // In-process: the real registry on a real SQLite file on the full tmpfs,
    // called the way a plugin's event handler calls it.
    const dataDir = path.join(mountPoint, 'observe');
    const store = await StateStore.open(dataDir);
    try {
      const registry = new GuestRegistry(store, createLogger('silent').log);
      const guest: Guest = { id: randomUUID(), type: '', image: '', nics: [], disks: [], state: 'running', memory: 128, cpu: 1, vnc: 0, metadata: {} };
      await registry.save(guest);
      await fillUp(mountPoint);
      let refused: Error | undefined;
      await registry.observe(guest.id, { state: 'off', metadata: { 'simulator.seen': 'x' } }, 'test').catch((e: Error) => (refused = e));
      expect(refused?.message).to.match(/SQLITE_FULL/);
      expect(registry.find(guest.id)).to.deep.equal(guest);
      await freeUp(mountPoint);
      await registry.observe(guest.id, { state: 'off' }, 'test');
      expect(registry.find(guest.id)!.state).to.equal('off');
      expect(registry.find(guest.id)!.metadata).to.deep.equal({});
    } finally {
      await store.close();
    }
  });
});

describe('one agent per data dir', function () {
  this.timeout(60000);
  // Two processes on one data dir: the lock is between processes.
  const agents = agentsPerTest();

  it('refuses a second agent at once, naming the holder PID and the data dir; it touched no job', async () => {
    const config = simulatorConfig({ jobs: { concurrency: 1 } });
    const first = await agents.spawn({ config });
    const slow = (await first.request('POST', '/guests?wait=10&start=false', { metadata: { 'simulator.delay.start': '20000' } })).body.id;
    const running = (await first.request('POST', `/guests/${slow}/start`)).headers.get('x-guest-job-id');
    const queued = (await first.request('DELETE', `/guests/${slow}`)).headers.get('x-guest-job-id');
    expect((await first.request('PATCH', '/metadata', { owner: 'first' })).status).to.equal(200);

    let refusal = '';
    const began = Date.now();
    // Same data dir and another port: what `npm start` run again would do.
    await agents.spawn({ config, dataDir: first.dataDir }).then(
      () => {
        throw new Error('a second agent started on a data dir in use');
      },
      (error: Error) => (refusal = error.message),
    );
    expect(refusal).to.include(`data dir ${first.dataDir} is in use by another hyperkern agent (pid ${first.pid})`);
    expect(Date.now() - began, 'it fails at once, waiting for nothing').to.be.below(15000);
    expect((await first.request('GET', `/jobs/${running}`)).body.Status).to.equal('Running');
    expect((await first.request('GET', `/jobs/${queued}`)).body.Status).to.equal('Queued');
    expect((await first.request('GET', '/metadata')).body).to.deep.equal({ owner: 'first' });
    const done = await first.request('GET', `/guests/${slow}/jobs`);
    expect(done.body.filter((j: { Message: string }) => /interrupted/.test(j.Message))).to.deep.equal([]);
  });

  it('lets the next agent take the data dir at once after kill -9 (the lock dies with its process)', async () => {
    const first = await agents.spawn({ config: simulatorConfig() });
    await first.kill9();
    const second = await agents.spawn({ config: simulatorConfig(), dataDir: first.dataDir });
    expect((await second.request('GET', '/health')).status).to.equal(200);
  });
});
