/**
 * Snapshot stages in an isolated plugin (the simulator, unchanged, in a real
 * child process): the snapshot kinds cross the channel as data, and a
 * download's bytes as stream notifications with credit-based flow control,
 * so a client that stops reading stops the child, a client that goes away
 * cancels the child's stream, and a stream that fails in the child cuts the
 * client off.
 */
import { expect } from 'chai';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';

const BIG = 64 * 1024 * 1024;
const GO_EMPTY = { id: '', dest: '', recursive: false, destroyMoreRecent: false };

describe('isolated plugins: snapshot stages and streamed downloads over the channel', function () {
  this.timeout(60_000);
  let agent: RunningAgent;

  before(async () => {
    const config = simulatorConfig({ simulator: { snapshotDownloadBytes: BIG } });
    for (const plugin of config.plugins) if (plugin.module === 'simulator') plugin.isolate = true;
    agent = await startAgent({ config });
  });
  after(async () => {
    await agent?.stop();
    if (agent) await removeDir(agent.dataDir);
  });

  async function simulatorHealth(): Promise<{ details: { pid: number; streams: number; snapshotBytesRead: number; isolated: boolean } }> {
    return (await agent.request('GET', '/health')).body.plugins.simulator;
  }
  async function guestWithSnapshot(metadata: Record<string, string> = {}): Promise<string> {
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 64, disks: [{ size: 8 }], metadata });
    expect(created.status, created.text).to.equal(200);
    const snap = await agent.request('POST', `/guests/${created.body.id}/snapshots?wait=10`, { ...GO_EMPTY, dest: 's' });
    expect(snap.status, snap.text).to.equal(200);
    return created.body.id;
  }
  /** GET a download with a client that reads only when told to. */
  function openDownload(path: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(agent.url + path, (res) => {
        res.pause();
        resolve(res);
      });
      req.on('error', reject);
      req.end();
    });
  }
  async function drain(res: IncomingMessage): Promise<{ bytes: number; head: Buffer }> {
    let bytes = 0;
    let head = Buffer.alloc(0);
    for await (const chunk of res) {
      if (head.length < 64) head = Buffer.concat([head, chunk as Buffer]).subarray(0, 64);
      bytes += (chunk as Buffer).length;
    }
    return { bytes, head };
  }

  it('runs the snapshot stages in the child: create, list, rollback, delete', async () => {
    const id = await guestWithSnapshot();
    expect((await simulatorHealth()).details.isolated).to.equal(true);
    expect((await agent.request('GET', `/guests/${id}/snapshots`)).body).to.deep.equal([{ id: 's', size: 0 }]);
    expect((await agent.request('GET', `/guests/${id}/disks/vda/snapshots/s`)).status).to.equal(200);
    const rolled = await agent.request('POST', `/guests/${id}/snapshots/s/rollback?wait=10`, GO_EMPTY);
    expect(rolled.status, rolled.text).to.equal(200);
    // The child's refusal (a StageRejection there) stays a refusal here.
    const taken = await agent.request('POST', `/guests/${id}/disks/vda/snapshots?wait=10`, { ...GO_EMPTY, dest: 'x' });
    expect(taken.status).to.equal(200);
    const deleted = await agent.request('DELETE', `/guests/${id}/snapshots/s?wait=10`);
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}/disks/vda/snapshots`)).body.map((s: { id: string }) => s.id)).to.deep.equal(['x']);
  });

  it('streams a download with Content-Length, and holds the child back while the client does not read', async () => {
    const id = await guestWithSnapshot();
    const before = (await simulatorHealth()).details.snapshotBytesRead;
    const res = await openDownload(`/guests/${id}/snapshots/s/download`);
    expect(res.statusCode).to.equal(200);
    expect(res.headers['content-length']).to.equal(String(BIG));
    // The client reads nothing for a while: the child may run ahead by the
    // credit window and what the sockets and pipes hold, not by the image.
    await new Promise((r) => setTimeout(r, 1500));
    const ahead = (await simulatorHealth()).details.snapshotBytesRead - before;
    expect(ahead, `bytes the child produced for a client that read none`).to.be.below(16 * 1024 * 1024);
    expect(ahead).to.be.above(0);
    res.resume();
    const { bytes, head } = await drain(res);
    expect(bytes).to.equal(BIG);
    expect(head.toString('latin1')).to.match(/^hyperkern simulated disk image; content /);
    expect((await simulatorHealth()).details.snapshotBytesRead - before).to.equal(BIG);
    expect((await simulatorHealth()).details.streams).to.equal(0);
  });

  it('streams chunked when the child gives no size', async () => {
    const id = await guestWithSnapshot({ 'simulator.download': 'chunked' });
    const res = await openDownload(`/guests/${id}/snapshots/s/download`);
    expect(res.headers['content-length']).to.equal(undefined);
    expect(res.headers['transfer-encoding']).to.equal('chunked');
    expect((await drain(res)).bytes).to.equal(BIG);
  });

  it('cancels the child\'s stream when the client goes away', async () => {
    const id = await guestWithSnapshot();
    const before = (await simulatorHealth()).details.snapshotBytesRead;
    const res = await openDownload(`/guests/${id}/snapshots/s/download`);
    res.resume();
    await new Promise((r) => res.once('data', r));
    res.destroy();
    const health = await waitFor(async () => {
      const h = await simulatorHealth();
      return h.details.streams === 0 && h;
    }, 10_000, 'the stream to be closed');
    await new Promise((r) => setTimeout(r, 500));
    const produced = (await simulatorHealth()).details.snapshotBytesRead - before;
    expect(produced, 'the child stopped producing').to.be.below(BIG);
    expect(health.details.pid, 'the same child').to.equal((await simulatorHealth()).details.pid);
  });

  it('cuts the client off when the child\'s stream fails, and keeps the child', async () => {
    const pid = (await simulatorHealth()).details.pid;
    const id = await guestWithSnapshot({ 'simulator.download': 'fail-midway' });
    const res = await openDownload(`/guests/${id}/snapshots/s/download`);
    res.resume();
    let failure: unknown;
    try {
      await drain(res);
    } catch (error) {
      failure = error;
    }
    expect(failure, 'an aborted response, not a short success').to.be.instanceOf(Error);
    // The agent's log line may trail the client's view of the cut.
    await waitFor(async () => agent.logs.some((l) => l.includes('snapshot download cut off') && l.includes('simulated failure of downloadSnapshot midway')), 5000, 'the agent to log the cut-off download');
    const health = await simulatorHealth();
    expect(health.details.pid).to.equal(pid);
    expect(health.details.streams).to.equal(0);
  });
});
