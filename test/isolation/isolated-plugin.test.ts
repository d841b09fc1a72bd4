/**
 * A plugin run with "isolate": true, in a real child process, driven through
 * the real agent's HTTP API. The fixture (test/fixtures/flaky-plugin)
 * crashes, hangs, blocks its event loop or answers garbage when a guest's
 * metadata says so; the kernel must fail that request or job with a message
 * naming the plugin, keep serving other guests, and bring the child back.
 */
import { expect } from 'chai';
import path from 'node:path';
import { distRoot, removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { processAlive } from '../support/process-alive.js';

const FLAKY = path.join(distRoot, 'test/fixtures/flaky-plugin/index.js');

function flakyConfig(entry: Record<string, unknown> = {}) {
  return {
    logLevel: 'info',
    accessLog: false,
    jobs: { stageTimeoutSeconds: 2, shutdownGraceSeconds: 2 },
    plugins: [{ module: FLAKY, isolate: true, ...entry }],
    actions: {
      create: { async: ['flaky.create'] },
      start: { async: ['flaky.start'] },
      poweroff: { async: ['flaky.poweroff'] },
      delete: { async: ['flaky.delete'] },
      cpuMetrics: { stages: ['flaky.cpuMetrics'] },
    },
  };
}

describe('isolated plugins: failures stay in the child', function () {
  this.timeout(60_000);
  let agent: RunningAgent;

  beforeEach(async () => {
    agent = await startAgent({ config: flakyConfig() });
  });
  afterEach(async () => {
    await agent?.stop();
    if (agent) await removeDir(agent.dataDir);
  });

  async function newGuest(metadata: Record<string, string> = {}): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=10', { memory: 128, cpu: 1, metadata });
    expect(res.status, res.text).to.equal(200);
    expect(res.body.state).to.equal('off');
    return res.body.id;
  }
  async function flakyHealth(): Promise<{ healthy: boolean; message?: string; details?: { pid: number; restarts: number } }> {
    return (await agent.request('GET', '/health')).body.plugins.flaky;
  }
  async function waitHealthy(restarts: number) {
    return waitFor(async () => {
      const h = await flakyHealth();
      return h.healthy && h.details!.restarts === restarts && h;
    }, 10_000, `plugin healthy again after ${restarts} restart(s)`);
  }

  it('runs the plugin in another process, and console.log there does not break the channel', async () => {
    const id = await newGuest(); // the create stage prints with console.log
    const health = await flakyHealth();
    expect(health.healthy).to.equal(true);
    expect(health.details!.pid).to.be.a('number').and.not.equal(agent.pid);
    const cpu = await agent.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    // cpu_time 1.5 means the child's guests.get() reached the kernel and found the guest.
    expect(cpu.body).to.deep.equal([{ cpu_time: 1.5, vcpu_time: health.details!.pid }]);
  });

  it('a crash fails the job with a message naming the plugin; other guests work after the restart', async () => {
    const victim = await newGuest({ 'flaky.start': 'crash' });
    const bystander = await newGuest();
    const before = await flakyHealth();
    const failed = await agent.request('POST', `/guests/${victim}/start?wait=10`);
    expect(failed.status, failed.text).to.equal(500);
    expect(failed.body.message).to.match(/isolated plugin "flaky" \(pid \d+\) exited with code 3 during stage start/);
    const after = await waitHealthy(1);
    expect(after.details!.pid, 'a new child process').to.not.equal(before.details!.pid);
    expect(processAlive(before.details!.pid), 'the crashed child is gone').to.equal(false);
    const ok = await agent.request('POST', `/guests/${bystander}/start?wait=10`);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.body.state).to.equal('running');
  });

  it('a stage that hangs times out; the child keeps answering and is not restarted', async () => {
    const victim = await newGuest({ 'flaky.start': 'hang' });
    const bystander = await newGuest();
    const started = Date.now();
    const failed = await agent.request('POST', `/guests/${victim}/start?wait=10`);
    expect(failed.status, failed.text).to.equal(500);
    expect(failed.body.message).to.include('stage flaky.start did not finish within 2 s');
    expect(Date.now() - started).to.be.within(1900, 8000);
    const cpu = await agent.request('GET', `/guests/${bystander}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    // Give a wrong restart time to happen (the ping deadline is 3 s), then check none did.
    await new Promise((r) => setTimeout(r, 3500));
    expect((await flakyHealth()).details!.restarts).to.equal(0);
  });

  it('a child whose event loop is stuck is found hung after a timeout, killed and restarted', async () => {
    const victim = await newGuest({ 'flaky.start': 'block' });
    const bystander = await newGuest();
    const before = await flakyHealth();
    const failed = await agent.request('POST', `/guests/${victim}/start?wait=10`);
    expect(failed.status, failed.text).to.equal(500);
    expect(failed.body.message).to.include('stage flaky.start did not finish within 2 s');
    await waitHealthy(1);
    expect(processAlive(before.details!.pid), 'the hung child was killed').to.equal(false);
    expect(agent.logs.some((l) => l.includes('stopped answering'))).to.equal(true);
    const ok = await agent.request('POST', `/guests/${bystander}/start?wait=10`);
    expect(ok.status, ok.text).to.equal(200);
  });

  it('reads a child\'s answer as Go reads it: fields left out because they are zero are zero', async () => {
    const id = await newGuest({ 'flaky.start': 'go', 'flaky.cpuMetrics': 'go' });
    const started = await agent.request('POST', `/guests/${id}/start?wait=10`);
    expect(started.status, started.text).to.equal(200);
    const guest = (await agent.request('GET', `/guests/${id}`)).body;
    expect(guest).to.include({ id, type: '', image: '', state: 'running', memory: 128, cpu: 1, vnc: 0 });
    expect(guest.nics).to.deep.equal([]);
    expect(guest.disks).to.deep.equal([]);
    expect(guest.metadata).to.deep.equal({ 'flaky.start': 'go', 'flaky.cpuMetrics': 'go' });
    const cpu = await agent.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.deep.equal([]);
  });

  it('a malformed answer fails the call clearly without a restart', async () => {
    const victim = await newGuest({ 'flaky.cpuMetrics': 'garbage' });
    const res = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
    expect(res.status, res.text).to.equal(502);
    expect(res.body.message).to.include('isolated plugin "flaky" answered stage cpuMetrics with "this is not a response"');
    expect((await flakyHealth()).details!.restarts).to.equal(0);
  });

  it('bytes that are not MessagePack on the channel get the child killed and restarted', async () => {
    const victim = await newGuest({ 'flaky.cpuMetrics': 'junk' });
    const bystander = await newGuest();
    const res = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
    expect(res.status, res.text).to.equal(502);
    expect(res.body.message).to.match(/isolated plugin "flaky" \(pid \d+\) was killed because it broke the protocol/);
    await waitHealthy(1);
    const ok = await agent.request('GET', `/guests/${bystander}/metrics/cpu`);
    expect(ok.status, ok.text).to.equal(200);
  });

  it('a StageRejection in the child stays a 4xx for the client', async () => {
    const victim = await newGuest({ 'flaky.cpuMetrics': 'reject' });
    const res = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
    expect(res.status, res.text).to.equal(409);
    expect(res.body.message).to.equal(`flaky refuses cpuMetrics for guest ${victim}`);
  });

  it('a plugin that keeps crashing is marked unhealthy on GET /health and no longer restarted', async () => {
    const victim = await newGuest({ 'flaky.cpuMetrics': 'crash' });
    // Five crashes within the window: each call waits for the restarted child, then crashes it again.
    let last = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
    for (let i = 0; i < 8 && (await flakyHealth()).message?.includes('no longer restarted') !== true; i++) {
      last = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
      expect(last.status, last.text).to.be.oneOf([502, 504]);
    }
    const health = await agent.request('GET', '/health');
    expect(health.body.status).to.equal('degraded');
    expect(health.body.plugins.flaky.healthy).to.equal(false);
    expect(health.body.plugins.flaky.message).to.match(/isolated plugin "flaky" failed 5 times within 60 s and is no longer restarted; last failure: .*exited with code 3/);
    // Calls now fail at once with the same explanation instead of waiting.
    const started = Date.now();
    const fast = await agent.request('GET', `/guests/${victim}/metrics/cpu`);
    expect(fast.status).to.equal(502);
    expect(fast.body.message).to.include('no longer restarted');
    expect(Date.now() - started).to.be.below(1000);
  });

  it('calls beyond maxPending wait their turn instead of failing', async () => {
    await agent.stop();
    await removeDir(agent.dataDir);
    agent = await startAgent({ config: flakyConfig({ maxPending: 1 }) });
    const slow = await newGuest({ 'flaky.cpuMetrics': 'slow:400' });
    const started = Date.now();
    const answers = await Promise.all([1, 2, 3].map(() => agent.request('GET', `/guests/${slow}/metrics/cpu`)));
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200]);
    // One at a time: three 400 ms calls take at least 1.2 s.
    expect(Date.now() - started).to.be.at.least(1150);
  });

  it('a child does not outlive an agent killed with SIGKILL (its channel closes)', async () => {
    const pid = (await flakyHealth()).details!.pid;
    await agent.kill9();
    await waitFor(async () => !processAlive(pid), 5000, `child ${pid} to exit after the agent died`);
  });

  it('SIGTERM stops the child cleanly with the agent', async () => {
    const pid = (await flakyHealth()).details!.pid;
    expect(processAlive(pid)).to.equal(true);
    expect(await agent.stop()).to.equal(0);
    expect(processAlive(pid), 'child gone after the agent stopped').to.equal(false);
    expect(agent.logs.some((l) => l.includes('did not answer stop'))).to.equal(false);
  });
});
