/**
 * Container guests on real LXC 5, through a real agent process: an OCI
 * image built offline from busybox-static, pushed to Debian's
 * docker-registry on loopback, fetched by POST /images, and a guest with
 * `type: "container"` taken through every action; exits the agent did not
 * ask for reported as events; the agent killed with -9 and its containers
 * found again; delete leaving nothing behind. Every container is removed by
 * name afterwards, whatever happened.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { containerConfig } from '../support/configs.js';
import { cgroupsOf, containerNameOf, initPidOf, makeContainerTestDirs, mountsMentioning, removeContainerTest, type ContainerTestDirs } from '../support/lxc-containers.js';
import { readSse } from '../support/sse-reader.js';
import { buildBusyboxImage, startRegistry, type LoopbackRegistry } from '../support/oci-registry.js';

const run = promisify(execFile);

/** Whether an lxc-monitor process watches `lxcPath`. */
async function monitorsOf(lxcPath: string): Promise<boolean> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('lxc-monitor\0') && cmdline.includes(`${lxcPath}\0`)) return true;
  }
  return false;
}

describe('container guests on LXC (lifecycle, exits, agent restart, delete)', function () {
  this.timeout(180_000);
  let dirs: ContainerTestDirs | undefined;
  let work: string;
  let dataDir: string;
  let lxcPath: string;
  let basesDir: string;
  let registry: LoopbackRegistry | undefined;
  let agent: RunningAgent | undefined;
  let guestId = '';
  const config = () => ({ ...containerConfig(work), logLevel: 'debug' });

  before(async () => {
    dirs = await makeContainerTestDirs('hk-ctlife-');
    ({ work, dataDir, lxcPath, basesDir } = dirs);
    const layouts = dirs.layouts;
    // Stops on SIGTERM (its stop signal) within 0.2 s; "stubborn" is a bare sleep, which as pid 1 ignores SIGPWR.
    const web = await buildBusyboxImage(work, layouts, 'web', '1.0', { entrypoint: ['/bin/sh', '-c'], cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'], stopSignal: 'SIGTERM' });
    const stubborn = await buildBusyboxImage(work, layouts, 'stubborn', '1.0', { entrypoint: ['/bin/sleep'], cmd: ['3600'] });
    registry = await startRegistry(work);
    await registry.push(web, 'web');
    await registry.push(stubborn, 'stubborn');
    agent = await startAgent({ config: config(), dataDir });
  });

  after(async () => {
    await removeContainerTest(dirs, { agent, registry });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(agent?.logs.filter((l) => !l.includes('"msg":"request"')).slice(-40).join('\n'));
  });

  const api = () => agent!;
  const jobEnd = async (jobId: string) =>
    waitFor(async () => {
      const j = await api().request('GET', `/jobs/${jobId}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 60_000, `job ${jobId} to end`);
  const act = async (action: string, query = '') => {
    const res = await api().request('POST', `/guests/${guestId}/${action}${query}`, null);
    expect(res.status, res.text).to.equal(202);
    return jobEnd(res.headers.get('x-guest-job-id')!);
  };
  const stateOf = async (id = guestId) => (await api().request('GET', `/guests/${id}`)).body.state;
  const name = () => containerNameOf(guestId);
  const freezer = () => readFile(`/sys/fs/cgroup/freezer/lxc.payload.${name()}/freezer.state`, 'utf8').then((s) => s.trim());

  it('fetches the images from the loopback registry', async () => {
    for (const id of ['web', 'stubborn']) {
      const res = await api().request('POST', '/images?wait=60', { id, type: 'container', source: `docker://127.0.0.1:${registry!.port}/${id}:1.0` });
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.include({ id, type: 'container', status: 'complete' });
    }
  });

  it('creates and starts a container guest: unprivileged, its limits set, capabilities dropped', async () => {
    const res = await api().request('POST', '/guests', { type: 'container', image: 'web', memory: 64, cpu: 1, nics: null, disks: null, metadata: null });
    expect(res.status, res.text).to.equal(202);
    guestId = res.body.id;
    const job = await jobEnd(res.headers.get('x-guest-job-id')!);
    expect(job.Status, JSON.stringify(job)).to.equal('Complete');
    expect(job.Action).to.equal('create');
    expect(await stateOf()).to.equal('running');

    const pid = await initPidOf(name());
    expect(pid, 'the container has an init').to.be.a('number');
    // The image's command runs as pid 1, root inside mapped to 100000 outside.
    expect(await readFile(`/proc/${pid}/cmdline`, 'utf8')).to.match(/^\/bin\/sh\0-c\0trap/);
    expect((await readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().split(/\s+/)).to.deep.equal(['0', '100000', '65536']);
    expect(Number(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1])).to.equal(100000);
    // CAP_SYS_MODULE (16) and CAP_SYS_TIME (25) are not in its bounding set.
    const bnd = BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]}`);
    expect(bnd & (1n << 16n)).to.equal(0n);
    expect(bnd & (1n << 25n)).to.equal(0n);
    // Seccomp filter on.
    expect(/^Seccomp:\s+(\d)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]).to.equal('2');
    expect((await readFile(`/sys/fs/cgroup/memory/lxc.payload.${name()}/memory.limit_in_bytes`, 'utf8')).trim()).to.equal(String(64 * 1024 * 1024));
    expect((await readFile(`/sys/fs/cgroup/cpu/lxc.payload.${name()}/cpu.cfs_quota_us`, 'utf8')).trim()).to.equal('100000');
    // Its root is a layer over the base: the upper dir holds only what the container wrote.
    expect((await stat(path.join(lxcPath, name(), 'upper'))).uid).to.equal(100000);
    // The base was unpacked with ids shifted to the map (containerIdShift): root inside owns the image's files and may change them (in its layer).
    expect((await stat(path.join(basesDir, 'web', 'rootfs', 'bin', 'busybox'))).uid).to.equal(100000);
    await run('lxc-attach', ['-n', name(), '-P', lxcPath, '--', '/bin/touch', '/bin/written-inside']);
    expect((await stat(path.join(lxcPath, name(), 'upper', 'bin', 'written-inside'))).uid).to.equal(100000);
    await stat(path.join(basesDir, 'web', 'rootfs', 'bin', 'written-inside')).then(
      () => expect.fail('a write inside reached the base'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    );
    // Its metrics come from its cgroup (the container plans of the metrics routes).
    const cpu = await api().request('GET', `/guests/${guestId}/metrics/cpu`);
    expect(cpu.status, cpu.text).to.equal(200);
    expect(cpu.body).to.have.length(1);
  });

  it('suspends (freezer FROZEN) and resumes', async () => {
    expect((await act('suspend')).Status).to.equal('Complete');
    expect(await stateOf()).to.equal('suspended');
    expect(await freezer()).to.equal('FROZEN');
    expect((await act('resume')).Status).to.equal('Complete');
    expect(await stateOf()).to.equal('running');
    expect(await freezer()).to.equal('THAWED');
  });

  it('restarts (a new init) and reboots (stop signal, then started again)', async () => {
    const before = await initPidOf(name());
    expect((await act('restart')).Status).to.equal('Complete');
    const restarted = await initPidOf(name());
    expect(restarted).to.be.a('number').and.not.equal(before);
    const job = await act('reboot');
    expect(job.Status, JSON.stringify(job)).to.equal('Complete');
    expect(await stateOf()).to.equal('running');
    expect(await initPidOf(name())).to.be.a('number').and.not.equal(restarted);
  });

  it('shuts down with the image stop signal, starts again, powers off', async () => {
    expect((await act('shutdown', '?timeout=10')).Status).to.equal('Complete');
    expect(await stateOf()).to.equal('shutdown');
    expect(await initPidOf(name())).to.equal(undefined);
    expect((await act('start')).Status).to.equal('Complete');
    expect(await stateOf()).to.equal('running');
    expect((await act('poweroff')).Status).to.equal('Complete');
    expect(await stateOf()).to.equal('off');
    expect(await initPidOf(name())).to.equal(undefined);
  });

  it('reports a container that stops by itself (shutdown) and one whose init is killed (crashed), with events', async () => {
    expect((await act('start')).Status).to.equal('Complete');
    // SIGTERM from outside: its trap exits 0, as if it ended its work.
    process.kill((await initPidOf(name()))!, 'SIGTERM');
    await waitFor(async () => (await stateOf()) === 'shutdown', 15_000, 'the guest to be seen shut down');
    expect((await act('start')).Status).to.equal('Complete');
    process.kill((await initPidOf(name()))!, 'SIGKILL');
    await waitFor(async () => (await stateOf()) === 'crashed', 15_000, 'the guest to be seen crashed');
    const feed = await readSse(`${api().url}/events?since=0&guest=${guestId}&type=guest.observed`);
    try {
      await waitFor(async () => feed.messages.length >= 2, 10_000, 'the observed events');
      const reasons = feed.messages.map((m) => JSON.parse(m.data).data.reason as string);
      expect(reasons.some((r) => /stopped by itself/.test(r)), reasons.join('; ')).to.equal(true);
      expect(reasons.some((r) => /killed by signal Killed\(9\)/.test(r)), reasons.join('; ')).to.equal(true);
    } finally {
      feed.close();
    }
  });

  it('keeps containers running when the agent is killed with -9, and finds them again', async () => {
    expect((await act('start')).Status).to.equal('Complete');
    const pid = await initPidOf(name());
    await agent!.kill9();
    expect(() => process.kill(pid!, 0), 'the container outlives the agent').not.to.throw();
    // The agent's lxc-monitor goes with it (parent-death signal), not left waiting for an event.
    await waitFor(async () => !(await monitorsOf(lxcPath)), 10_000, "the killed agent's lxc-monitor to end");
    agent = await startAgent({ config: config(), dataDir });
    expect(await stateOf()).to.equal('running');
    expect(await initPidOf(name())).to.equal(pid);
    // Driven again: suspend and resume through the new agent.
    expect((await act('suspend')).Status).to.equal('Complete');
    expect((await act('resume')).Status).to.equal('Complete');
    // Stopped while the agent is away: found crashed at its next start.
    await agent.stop();
    process.kill(pid!, 'SIGKILL');
    const pidFile = path.join(lxcPath, name(), 'monitor.pid');
    await waitFor(
      async () => (await initPidOf(name())) === undefined && (await cgroupsOf(name())).length === 0 && (await stat(pidFile).then(() => false, () => true)),
      15_000,
      'LXC to clean up',
    );
    agent = await startAgent({ config: config(), dataDir });
    expect(await stateOf()).to.equal('crashed');
  });

  it('fails a shutdown the container ignores (Error job, still running), then powers it off', async () => {
    const res = await api().request('POST', '/guests', { type: 'container', image: 'stubborn', memory: 0, cpu: 0 });
    expect(res.status, res.text).to.equal(202);
    const id = res.body.id;
    expect((await jobEnd(res.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
    const shutdown = await api().request('POST', `/guests/${id}/shutdown?timeout=1`, null);
    const job = await jobEnd(shutdown.headers.get('x-guest-job-id')!);
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.match(/did not stop within 1 s of SIGPWR.*still running/);
    expect(job.Message).not.to.include(work);
    expect(await stateOf(id)).to.equal('running');
    expect(await initPidOf(containerNameOf(id))).to.be.a('number');
    const del = await api().request('DELETE', `/guests/${id}`);
    expect((await jobEnd(del.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
  });

  it('deletes a running container leaving nothing behind (no container, layer, cgroup or mount)', async () => {
    expect((await act('start')).Status).to.equal('Complete');
    const del = await api().request('DELETE', `/guests/${guestId}`);
    expect(del.status, del.text).to.equal(202);
    expect((await jobEnd(del.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
    expect((await api().request('GET', `/guests/${guestId}`)).status).to.equal(404);
    await stat(path.join(lxcPath, name())).then(
      () => expect.fail('the container folder (config, upper layer) is still there'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    );
    expect(await cgroupsOf(name())).to.deep.equal([]);
    expect(await mountsMentioning(name())).to.deep.equal([]);
    const ls = await run('lxc-ls', ['-P', lxcPath, '-1']);
    expect(ls.stdout.trim()).to.equal('');
  });

  it('refuses a container of an image it does not have (400) and disks (400), before any job', async () => {
    const missing = await api().request('POST', '/guests', { type: 'container', image: 'nosuch' });
    expect(missing.status, missing.text).to.equal(400);
    expect(missing.body.message).to.match(/no container image on this host/);
    const disks = await api().request('POST', '/guests', { type: 'container', image: 'web', disks: [{ size: 10 }] });
    expect(disks.status, disks.text).to.equal(400);
    expect(disks.body.message).to.match(/has no disks/);
  });
});

describe('container guests on a host without LXC', function () {
  this.timeout(60_000);
  let work: string;
  let agent: RunningAgent | undefined;

  before(async () => {
    work = await makeTempDir('hk-ctnolxc-');
    // The LXC programs' folder points at an empty one: the agent starts, container actions answer 501.
    await mkdir(path.join(work, 'no-lxc'));
    const config = { ...containerConfig(work, { lxc: { lxcBinDir: path.join(work, 'no-lxc') } }), logLevel: 'debug' };
    agent = await startAgent({ config, dataDir: path.join(work, 'data') });
  });

  after(async () => {
    await agent?.stop().catch(() => undefined);
    if (work) await removeDir(work);
  });

  it('starts, and answers a container create with 501 naming the package to install', async () => {
    expect((await agent!.request('GET', '/health')).status).to.equal(200);
    const res = await agent!.request('POST', '/guests', { type: 'container', image: 'web' });
    expect(res.status, res.text).to.equal(501);
    expect(res.body.message).to.match(/install the Debian package "lxc"/);
    expect(res.text).not.to.include(work);
    expect((await agent!.request('GET', '/guests')).body).to.deep.equal([]);
  });
});
