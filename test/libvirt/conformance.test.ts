/**
 * The conformance flows (test/support/conformance-flows.ts) on the libvirt
 * backend: a Go client and a JavaScript client drive the real agent
 * (config/libvirt.json, whose create boots the guest, as mistify's libvirt
 * sub-agent does) and a real libvirtd on qemu:///system running the tiny
 * Linux guest under TCG, through every endpoint.
 */
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { consoleBootWatcher, goFlow, jsFlow, type FlowBackend } from '../support/conformance-flows.js';
import { buildGoClient, removeGoClient } from '../support/go-client.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { LibvirtWorld } from './world.js';

describe('conformance: Go and JavaScript clients on libvirt (real libvirtd, tiny guest under TCG)', function () {
  this.timeout(600_000);
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  let backend: FlowBackend;

  before(async function () {
    this.timeout(600_000);
    await buildGoClient();
    world = await LibvirtWorld.create();
    const config = world.config({ shutdownTimeoutSeconds: 60, rebootTimeoutSeconds: 60 });
    agent = await startAgent({ config: { ...config, logLevel: 'info' }, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    const consoleLog = (id: string) => path.join(agent!.dataDir, 'plugins', 'libvirt', id, 'console.log');
    backend = {
      guest: { metadata: world.tinyBoot, nics: [{ network: world.bridge }], disks: [{ size: 64 }] },
      jobTimeoutSeconds: 120,
      booted: consoleBootWatcher(consoleLog, INIT_REACHED, 120_000),
    };
  });
  after(async function () {
    this.timeout(180_000);
    await agent?.stop();
    if (!world) return;
    const leftByTests = await world.domains();
    await world.dispose();
    if (agent) await Promise.all([removeDir(agent.dataDir), rm(`${agent.dataDir}.config.json`, { force: true })]);
    await removeGoClient();
    expect(leftByTests, 'domains the tests left behind').to.deep.equal([]);
  });

  it('a Go client creates (a running guest), gets, lists, patches and removes metadata, reads metrics, runs all seven actions and polls their jobs', async () => {
    await goFlow(agent!, backend);
  });

  it('a JavaScript client does the same with fields left out, {} or no body', async () => {
    await jsFlow(agent!, backend);
  });
});
