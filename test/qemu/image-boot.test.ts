/**
 * A guest created from a fetched image boots on real QEMU (TCG): the image is
 * fetched through POST /images from a loopback server, the guest's disk is a
 * qcow2 overlay on it, and the running guest reads the image's data pattern
 * from its disk. While it exists, the image cannot be deleted.
 */
import { expect } from 'chai';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { makeTempDir, removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { makeQcow2 } from '../support/image-files.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';
import { GuestShell, waitForConsole } from '../support/backend-testing.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';

describe('QEMU: a guest created from a fetched image (real QEMU under TCG)', function () {
  this.timeout(180_000);
  let world: QemuWorld;
  let agent: RunningAgent | undefined;
  let server: ImageServer;
  let served: string;

  before(async function () {
    this.timeout(300_000);
    world = await QemuWorld.create();
    served = await makeTempDir('hk-image-boot-');
    await mkdir(served, { recursive: true });
    await makeQcow2(served, 'base.qcow2', 64, 4); // 4 MiB of 0xab at the start
    server = await startImageServer(served);
    const config = shippedConfig('qemu.json');
    for (const entry of config.plugins) {
      if (entry.module === 'qemu') entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir };
      if (entry.module === 'images') entry.options = { ...entry.options, imagesDir: world.imagesDir };
    }
    agent = await startAgent({ config: { ...config, logLevel: 'info' }, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
  });

  after(async () => {
    await disposeQemuTestAgent(agent);
    await server?.close();
    if (served) await removeDir(served);
    await world?.dispose();
  });

  it('fetches the image, creates and boots a guest on it, and the guest reads the image data', async () => {
    const a = agent!;
    const fetched = await a.request('POST', '/images?wait=60', { id: 'base', type: '', dest: '', source: `${server.url}/base.qcow2` });
    expect(fetched.status, fetched.text).to.equal(200);
    expect(fetched.body).to.include({ id: 'base', size: 64, status: 'complete' });

    const created = await a.request('POST', '/guests?wait=120', { memory: 256, cpu: 1, disks: [{ image: 'base' }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    const guest = created.body;
    expect(guest.disks[0]).to.include({ image: 'base', size: 64 });
    const runDir = path.join(a.dataDir, 'plugins', 'qemu', guest.id);
    await waitForConsole(path.join(runDir, 'console.log'), INIT_REACHED, 60_000);
    await waitFor(async () => (await a.request('GET', `/guests/${guest.id}`)).body.state === 'running', 20_000, 'running');

    const shell = await GuestShell.connect(path.join(runDir, 'serial1.sock'));
    const bytes = await shell.run('od -A n -t x1 -N 8 /dev/vda');
    shell.close();
    expect(bytes.replace(/\s+/g, ' ').trim(), 'the guest sees the fetched image on its disk').to.equal('ab ab ab ab ab ab ab ab');

    const refused = await a.request('DELETE', '/images/base');
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.body.message).to.include(`in use by guest ${guest.id}`);

    expect((await a.request('DELETE', `/guests/${guest.id}?wait=60`)).status).to.equal(200);
    expect((await a.request('DELETE', '/images/base?wait=30')).status).to.equal(200);
  });
});
