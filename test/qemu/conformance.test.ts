/**
 * The conformance flows (test/support/conformance-flows.ts) on the QEMU
 * backend: a Go client and a JavaScript client drive the real agent
 * (config/qemu.json, whose create boots the guest) and real QEMU under TCG
 * running the tiny Linux guest, through every endpoint.
 */
import path from 'node:path';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { consoleBootWatcher, goFlow, jsFlow, type FlowBackend } from '../support/conformance-flows.js';
import { buildGoClient, removeGoClient } from '../support/go-client.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';

describe('conformance: Go and JavaScript clients on QEMU (real QEMU under TCG)', function () {
  this.timeout(600_000);
  let world: QemuWorld;
  let agent: RunningAgent;
  let backend: FlowBackend;

  before(async function () {
    this.timeout(600_000);
    await buildGoClient();
    world = await QemuWorld.create();
    const config = shippedConfig('qemu.json');
    const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
    entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir, shutdownTimeoutSeconds: 60, rebootTimeoutSeconds: 60 };
    agent = await startAgent({ config: { ...config, logLevel: 'info' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const consoleLog = (id: string) => path.join(agent.dataDir, 'plugins', 'qemu', id, 'console.log');
    backend = { guest: { metadata: world.tinyBoot, disks: [{ size: 32 }] }, jobTimeoutSeconds: 120, booted: consoleBootWatcher(consoleLog, INIT_REACHED, 120_000) };
  });
  after(async function () {
    this.timeout(120_000);
    await disposeQemuTestAgent(agent);
    await world?.dispose();
    await removeGoClient();
  });

  it('a Go client creates (a running guest), gets, lists, patches and removes metadata, reads metrics, runs all seven actions and polls their jobs', async () => {
    await goFlow(agent, backend);
  });

  it('a JavaScript client does the same with fields left out, {} or no body', async () => {
    await jsFlow(agent, backend);
  });
});
