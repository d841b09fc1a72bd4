/**
 * An agent killed with -9 in the middle of a snapshot of a running
 * container, on real LXC through an agent process: the snapshot freezes
 * the container (its cgroup freezer) for the copy of its layer, so the kill
 * leaves it frozen, with a half-written copy on disk. The container's layer
 * is made large first (data written inside it) so that the copy takes a
 * while; the test watches the freezer and the copy appear and kills the
 * agent then. At the next start, before the API answers, the container is
 * thawed (RUNNING, the registry says running, commands run inside), the
 * half copy is gone (not listed, not on disk), no cp of the killed agent
 * writes on; a container the user suspended before the kill stays
 * suspended; and a snapshot taken after the restart works.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../support/agent.js';
import { containerNameOf } from '../support/lxc-containers.js';
import { ContainerAgent, run } from './snapshots-console-agent.js';

/**
 * Data written into the container's layer: on ext4 (no reflinks) the
 * snapshot copies every byte of it while the container is frozen (~1.5 GB/s
 * measured here from the page cache: a window of some 300 ms, watched every 2 ms).
 */
const LAYER_MIB = 512;

/** The container's v1 freezer as the agent writes it (lxc-info shows FROZEN only for lxc-freeze's own freezes). */
const freezerState = (guestId: string) => readFile(`/sys/fs/cgroup/freezer/lxc.payload.${containerNameOf(guestId)}/freezer.state`, 'utf8').then((s) => s.trim(), () => 'none');

describe('container snapshot cut short by a killed agent (LXC)', function () {
  this.timeout(300_000);
  let world: ContainerAgent;

  before(async () => {
    world = await ContainerAgent.make('hk-ctsnapcrash-', { idle: { entrypoint: ['/bin/sh', '-c'], cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'] } });
  });
  after(async () => {
    await world?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(world?.agent.logs.filter((l) => !l.includes('"msg":"request"')).slice(-30).join('\n'));
  });
  const api = () => world.agent;
  const stateOf = async (id: string) => (await api().request('GET', `/guests/${id}`)).body.state as string;
  const lxcState = async (id: string) => (await run('lxc-info', ['-n', containerNameOf(id), '-P', world.lxcPath, '-sH'])).stdout.trim();

  it('thaws the container a killed snapshot left frozen and removes the half copy; a suspended container stays suspended', async () => {
    const id = await world.guest('idle');
    const suspended = await world.guest('idle');
    await world.sh(id, `echo alive > /alive && for i in $(seq 1 ${LAYER_MIB / 16}); do dd if=/dev/zero of=/bulk-$i bs=1M count=16 2>/dev/null; done; sync`);
    expect((await world.act(suspended, 'suspend')).Status).to.equal('Complete');
    expect(await freezerState(suspended)).to.equal('FROZEN');

    const snapshotsDir = path.join(world.containerDir(id), 'snapshots');
    const partials = async () => (await readdir(snapshotsDir).catch(() => [] as string[])).filter((n) => n.startsWith('.partial-'));
    let answered = false;
    const request = api()
      .request('POST', `/guests/${id}/snapshots`, { id: '', dest: 'cut', recursive: false, destroyMoreRecent: false })
      .then(() => void (answered = true), () => undefined); // the agent dies under it: no answer
    // Frozen with its copy under way: the moment the kill is for. A copy over before it is seen is a test too weak (more data).
    for (const deadline = Date.now() + 60_000; !answered && !((await freezerState(id)) === 'FROZEN' && (await partials()).length === 1); ) {
      if (Date.now() > deadline) throw new Error('the snapshot did not freeze the container and start its copy within 60 s');
      await sleep(2);
    }
    expect(answered, `the snapshot ended before the test saw its copy: write more than ${LAYER_MIB} MiB into the layer`).to.equal(false);
    await api().kill9();
    await request;
    expect(await freezerState(id), 'the killed agent left it frozen').to.equal('FROZEN');
    expect(await partials(), 'and its half copy').to.have.length(1);
    const halfCopy = path.join(snapshotsDir, (await partials())[0]!);
    // cp dies with the agent (parent-death signal): nothing writes on into the copy the start removes.
    await waitFor(async () => !(await copiesWritingInto(halfCopy)), 10_000, "the killed agent's cp to end");

    await world.startAgent();
    expect(await freezerState(id), 'thawed before the API answers').to.equal('THAWED');
    expect(await lxcState(id)).to.equal('RUNNING');
    expect(await stateOf(id)).to.equal('running');
    expect(await world.sh(id, 'cat /alive')).to.equal('alive\n');
    expect(await freezerState(suspended), "the user's suspend is kept").to.equal('FROZEN');
    expect(await stateOf(suspended)).to.equal('suspended');

    const list = await api().request('GET', `/guests/${id}/snapshots`);
    expect(list.status, list.text).to.equal(200);
    expect(list.body, 'no half snapshot listed').to.deep.equal([]);
    expect(await readdir(snapshotsDir), 'nor on disk').to.deep.equal([]);
    expect(await readdir(world.containerDir(id)), 'the freeze marker is gone').not.to.include('snapshot-freeze.json');

    // The container snapshots as before, and is thawed after.
    const taken = await api().request('POST', `/guests/${id}/snapshots?wait=120`, { id: '', dest: 'after', recursive: false, destroyMoreRecent: false });
    expect(taken.status, taken.text).to.equal(200);
    expect(taken.body[0].id).to.equal('after');
    expect(await freezerState(id)).to.equal('THAWED');
    expect((await world.act(suspended, 'resume')).Status).to.equal('Complete');
    expect(await freezerState(suspended)).to.equal('THAWED');
  });
});

/** Whether a process names `dir` in its arguments (a cp of the killed agent writing on into it). */
async function copiesWritingInto(dir: string): Promise<boolean> {
  const { stdout } = await run('ps', ['-eo', 'args=']);
  return stdout.split('\n').some((line) => line.includes(dir));
}
