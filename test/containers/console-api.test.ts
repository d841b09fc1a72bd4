/**
 * A container guest's console through the console stage kind, on real LXC
 * through an agent process and a real WebSocket: a viewer attached before
 * the start sees the container's init greet on its console, typed input
 * reaches the shell on /dev/console and its answer comes back, the log
 * route has both; the agent is killed with -9 (the container runs on and
 * prints meanwhile, its lxc-console child ends with the agent), and after
 * the restart the log still has everything and typing works again.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { openConsole } from '../support/console-client.js';
import { containerNameOf } from '../support/lxc-containers.js';
import { waitFor } from '../support/agent.js';
import { ContainerAgent } from './snapshots-console-agent.js';

/** Processes whose command line holds every one of `words`. */
async function processesWith(...words: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (words.every((w) => cmdline.includes(w))) found.push(Number(entry));
  }
  return found;
}

describe('container console through the API (LXC)', function () {
  this.timeout(180_000);
  let world: ContainerAgent;
  let id = '';

  before(async () => {
    world = await ContainerAgent.make('hk-ctconsapi-', {
      // Its init greets on the console, then is a shell there.
      greeter: { entrypoint: ['/bin/sh', '-c'], cmd: ['echo "hello from init $$"; exec /bin/sh'] },
    });
    id = await world.guest('greeter', false);
  });
  after(async () => {
    await world?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(world?.agent.logs.filter((l) => !l.includes('"msg":"request"')).slice(-30).join('\n'));
  });
  const api = () => world.agent;

  it('shows the init greeting to a viewer who came before the start, and answers what is typed', async () => {
    const viewer = await openConsole(api().url, id);
    try {
      expect((await world.act(id, 'start')).Status).to.equal('Complete');
      await viewer.waitFor(/hello from init 1\r?\n/, 30_000);
      await viewer.waitFor(/# /, 30_000);
      const from = viewer.received().length;
      viewer.type('echo answer-$((6*7))\r');
      await viewer.waitFor(/\nanswer-42\r?\n/, 30_000, from);
    } finally {
      await viewer.close();
    }
    const log = await api().request('GET', `/guests/${id}/console/log?bytes=65536`);
    expect(log.status).to.equal(200);
    expect(log.headers.get('content-type')).to.match(/^text\/plain/);
    expect(log.text).to.match(/hello from init 1/);
    expect(log.text).to.match(/answer-42/);
  });

  it('keeps the log across an agent killed with -9 while the container prints, and types again after the restart', async () => {
    const viewer = await openConsole(api().url, id);
    const from = viewer.received().length;
    viewer.type('echo before-kill-$((1+1))\r');
    await viewer.waitFor(/\nbefore-kill-2\r?\n/, 30_000, from);
    const name = containerNameOf(id);
    expect(await processesWith('-n', name, '-t'), "the agent's lxc-console on the container").to.have.length(1);

    await api().kill9();
    // The container runs on and prints while nobody (no agent) watches.
    await world.sh(id, 'echo while-the-agent-was-down > /dev/console');
    await waitFor(async () => (await processesWith('-n', name, '-t')).length === 0, 10_000, "the dead agent's lxc-console to end (its stdin closed)");

    await world.startAgent();
    expect((await api().request('GET', `/guests/${id}`)).body.state).to.equal('running');
    const log = await api().request('GET', `/guests/${id}/console/log`);
    expect(log.status).to.equal(200);
    for (const line of ['hello from init 1', 'answer-42', 'before-kill-2', 'while-the-agent-was-down']) expect(log.text).to.include(line);

    const again = await openConsole(api().url, id);
    try {
      const at = again.received().length;
      await waitFor(async () => {
        again.type('echo after-restart-$((2+3))\r');
        await new Promise((resolve) => setTimeout(resolve, 300));
        return /\nafter-restart-5\r?\n/.test(again.received().subarray(at).toString('latin1'));
      }, 30_000, 'typing to work after the restart');
    } finally {
      await again.close();
    }
  });
});
