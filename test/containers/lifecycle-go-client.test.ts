/**
 * The real Go client (test/go-client: mistify's types, encoding/json, its
 * request habits: every non-omitempty field, a `null` action body) on
 * container guests: a container image fetched from a loopback registry,
 * a guest created with `type: "container"`, every action, the metrics
 * decoded into mistify's Go types, delete. Real LXC, a real agent process.
 */
import { expect } from 'chai';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { buildGoClient, goClient, removeGoClient } from '../support/go-client.js';
import { containerNameOf, initPidOf, removeContainers } from '../support/lxc-containers.js';
import { buildBusyboxImage, startRegistry, unmountUnder, type LoopbackRegistry } from '../support/oci-registry.js';

describe('the Go client on container guests (LXC)', function () {
  this.timeout(300_000);
  let work: string;
  let lxcPath: string;
  let registry: LoopbackRegistry | undefined;
  let agent: RunningAgent | undefined;

  before(async () => {
    await buildGoClient();
    work = await makeTempDir('hk-ctgo-');
    await chmod(work, 0o711); // unprivileged containers' root walks down to its layer and image
    const dataDir = path.join(work, 'data');
    await mkdir(dataDir, { mode: 0o711 });
    lxcPath = path.join(dataDir, 'plugins', 'lxc', 'containers');
    const image = await buildBusyboxImage(work, path.join(work, 'layouts'), 'app', '2.0', {
      entrypoint: ['/bin/sh', '-c'],
      cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'],
      stopSignal: 'SIGTERM',
    });
    registry = await startRegistry(work);
    await registry.push(image, 'app');
    const bases = path.join(work, 'bases');
    const config = shippedConfig('agent.json');
    config.plugins = config.plugins
      .filter((p: { module: string }) => p.module !== 'qemu')
      .map((p: { module: string; options?: Record<string, unknown> }) =>
        p.module === 'images' ? { ...p, options: { ...p.options, imagesDir: path.join(work, 'images'), containerImagesDir: bases } } : p.module === 'lxc' ? { ...p, options: { ...p.options, containerImagesDir: bases } } : p,
      );
    agent = await startAgent({ config, dataDir });
  });

  after(async () => {
    await agent?.stop().catch(() => undefined);
    if (lxcPath) await removeContainers(lxcPath);
    await registry?.stop();
    await removeGoClient();
    if (work) {
      await unmountUnder(work);
      await removeDir(work);
    }
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
