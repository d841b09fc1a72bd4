/**
 * A sub-agent that is not TypeScript: test/fixtures/py-subagent/subagent.py
 * speaks the isolation protocol with Debian's python3-msgpack only. The
 * agent runs it from a config `command` (relative to the config file) and a
 * client drives a whole guest lifecycle through the HTTP API. Its config
 * widens start's states to running (guard.requireState args.states), so a
 * start of a running guest reaches the sub-agent, whose refusal is tested.
 */
import { expect } from 'chai';
import path from 'node:path';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../support/agent.js';

const CONFIG = path.join(repoRoot, 'test/fixtures/py-subagent/agent.json');

describe('isolated plugins: a Python sub-agent over MessagePack-RPC', function () {
  this.timeout(60_000);
  let agent: RunningAgent | undefined;
  let dataDir: string;

  before(async () => {
    dataDir = await makeTempDir();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  after(async () => {
    await removeDir(dataDir);
  });

  it('drives create, start, metrics, suspend, resume, reboot, restart, shutdown, start, poweroff and delete', async () => {
    agent = await startAgent({ config: CONFIG, dataDir });
    const a = agent;
    const created = await a.request('POST', '/guests?wait=10', { memory: 256, cpu: 2, nics: [{ name: 'eth0' }], disks: [{ size: 100 }] });
    expect(created.status, created.text).to.equal(200);
    expect(created.body.state).to.equal('off');
    expect(created.body.metadata['pysim.last']).to.equal('create');
    const id = created.body.id as string;

    const step = async (action: string, state: string) => {
      const res = await a.request('POST', `/guests/${id}/${action}?wait=10`);
      expect(res.status, `${action}: ${res.text}`).to.equal(200);
      expect(res.body.state, `state after ${action}`).to.equal(state);
      expect(res.body.metadata['pysim.last']).to.equal(action);
      const job = await a.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`);
      expect(job.body.Message).to.equal(`python sub-agent did ${action}`);
    };

    await step('start', 'running');
    await new Promise((r) => setTimeout(r, 50));
    const cpu = await a.request('GET', `/guests/${id}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.be.an('array').with.length(2);
    expect(cpu.body[0].cpu_time).to.be.above(0);
    const nic = await a.request('GET', `/guests/${id}/metrics/nic`);
    expect(nic.status, nic.text).to.equal(200);
    expect(Object.keys(nic.body)).to.deep.equal(['eth0']);
    expect(nic.body.eth0).to.include.keys('rx_bytes', 'tx_packets');
    const disk = await a.request('GET', `/guests/${id}/metrics/disk`);
    expect(disk.status, disk.text).to.equal(200);
    const [device] = Object.keys(disk.body);
    expect(disk.body[device].disk).to.equal(device);

    await step('suspend', 'suspended'); // the sub-agent asks the kernel (guests.get) before answering
    await step('start', 'running');
    await step('reboot', 'running');
    // The sub-agent's guests.observe call landed, and the stage's own answer did not undo it.
    expect((await a.request('GET', `/guests/${id}/metadata`)).body).to.include({ 'pysim.rebooted': 'yes', 'pysim.last': 'reboot' });
    await step('restart', 'running');

    // A refusal in Python ({message, status: 409}) ends the job with its message. The kernel's lifecycle
    // table would refuse a start of a running guest in the request; the fixture's config widens start's
    // states explicitly (guard.requireState's args.states) so the refusal comes from the sub-agent.
    const refused = await a.request('POST', `/guests/${id}/start?wait=10`);
    expect(refused.status).to.equal(500);
    expect(refused.body.message).to.include('cannot start a guest that is running (python sub-agent)');

    await step('shutdown', 'shutdown');
    await step('start', 'running');
    await step('poweroff', 'off');
    const deleted = await a.request('DELETE', `/guests/${id}?wait=10`);
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await a.request('GET', `/guests/${id}`)).status).to.equal(404);

    const health = await a.request('GET', '/health');
    expect(health.body.plugins.pysim).to.deep.include({ healthy: true, message: 'python sub-agent' });
    expect(a.logs.some((l) => l.includes('"python sub-agent started"'))).to.equal(true);
  });

  it('asks the kernel for its guests at start (a call from the child to the kernel)', async () => {
    agent = await startAgent({ config: CONFIG, dataDir });
    for (let i = 0; i < 2; i++) {
      const res = await agent.request('POST', '/guests?wait=10', { memory: 64, cpu: 1 });
      expect(res.status, res.text).to.equal(200);
    }
    expect(await agent.stop()).to.equal(0);
    // A clean stop reached the sub-agent as a "stop" call before its stdin closed.
    expect(agent.logs.some((l) => l.includes('"python sub-agent stopping"'))).to.equal(true);
    // Same data dir: the new sub-agent process learns the two guests from the kernel.
    agent = await startAgent({ config: CONFIG, dataDir });
    const health = await agent.request('GET', '/health');
    expect(health.body.plugins.pysim.details).to.include({ knownGuestsAtStart: 2, isolated: true });
  });

  it('refuses to start with a clear message when the command cannot run', async () => {
    const dir = await makeTempDir();
    try {
      const failure = await startAgent({
        config: { logLevel: 'info', plugins: [{ command: ['./no-such-sub-agent'] }], actions: {} },
        dataDir: dir,
      }).then(
        (started) => {
          agent = started;
          return '';
        },
        (error: Error) => error.message,
      );
      expect(failure).to.match(/plugins\[0\] \("\.\/no-such-sub-agent"\): sub-agent "\.\/no-such-sub-agent": handshake failed: .*cannot run .*no-such-sub-agent: ENOENT/);
    } finally {
      await removeDir(dir);
    }
  });
});
