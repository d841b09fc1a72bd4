/**
 * The real Go client (test/go-client: mistify's types, encoding/json, its
 * request habits: every non-omitempty field, a `null` action body) on
 * container guests: a container image fetched from a loopback registry,
 * a guest created with `type: "container"`, every action, the metrics
 * decoded into mistify's Go types, delete. Real LXC, a real agent process.
 */
import { expect } from 'chai';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { containerConfig } from '../support/configs.js';
import { buildGoClient, goClient, removeGoClient } from '../support/go-client.js';
import { containerNameOf, initPidOf, makeContainerTestDirs, removeContainerTest, type ContainerTestDirs } from '../support/lxc-containers.js';
import { buildBusyboxImage, startRegistry, type LoopbackRegistry } from '../support/oci-registry.js';

describe('the Go client on container guests (LXC)', function () {
  this.timeout(300_000);
  let dirs: ContainerTestDirs | undefined;
  let registry: LoopbackRegistry | undefined;
  let agent: RunningAgent | undefined;

  before(async () => {
    await buildGoClient();
    dirs = await makeContainerTestDirs('hk-ctgo-');
    const image = await buildBusyboxImage(dirs.work, dirs.layouts, 'app', '2.0', {
      entrypoint: ['/bin/sh', '-c'],
      cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'],
      stopSignal: 'SIGTERM',
    });
    registry = await startRegistry(dirs.work);
    await registry.push(image, 'app');
    agent = await startAgent({ config: containerConfig(dirs.work), dataDir: dirs.dataDir });
  });

  after(async () => {
    await removeContainerTest(dirs, { agent, registry });
    await removeGoClient();
  });

  it('fetches a container image, creates a container guest, runs every action, reads its metrics, deletes it', async () => {
    const fetched = await goClient(agent!.url, 'fetch-container-image', 'app', `docker://127.0.0.1:${registry!.port}/app:2.0`, '120');
    expect(fetched.job.Status).to.equal('Complete');
    expect(fetched.image).to.include({ id: 'app', type: 'container', status: 'complete' });
    expect(fetched.listed.map((i: { id: string }) => i.id)).to.deep.equal(['app']);

    const created = await goClient(agent!.url, 'create', '120', JSON.stringify({ type: 'container', image: 'app', memory: 32, cpu: 1 }));
    expect(created.job.Status, JSON.stringify(created.job)).to.equal('Complete');
    const id: string = created.guest.id;
    expect(created.guest).to.include({ type: 'container', image: 'app', state: 'running', memory: 32, cpu: 1 });
    expect(await initPidOf(containerNameOf(id))).to.be.a('number');

    const steps: Array<[string, string]> = [
      ['suspend', 'suspended'],
      ['resume', 'running'],
      ['restart', 'running'],
      ['reboot', 'running'],
      ['shutdown', 'shutdown'],
      ['start', 'running'],
      ['poweroff', 'off'],
      ['start', 'running'],
    ];
    for (const [action, state] of steps) {
      const out = await goClient(agent!.url, 'act', id, action, '60');
      expect(out.job.Status, `${action}: ${JSON.stringify(out.job)}`).to.equal('Complete');
      expect(out.guest.state, action).to.equal(state);
    }

    const metrics = await goClient(agent!.url, 'metrics', id);
    expect(metrics.cpu).to.have.length(1);
    expect(metrics.cpu[0].cpu_time).to.be.a('number').and.be.greaterThan(0);
    expect(metrics.disk).to.have.property('rootfs');
    expect(metrics.nic).to.deep.equal({});

    const deleted = await goClient(agent!.url, 'act', id, 'delete', '60');
    expect(deleted.job.Status).to.equal('Complete');
    expect(deleted.status).to.equal(404);
    expect(await initPidOf(containerNameOf(id))).to.equal(undefined);
  });
});
