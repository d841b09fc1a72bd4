/**
 * What the QEMU backend refuses at create, through the real agent with the
 * real QEMU plugin (config/qemu.json): NIC names, models and disk buses that
 * QEMU's command line would refuse answer 400 naming the field before any
 * guest or job exists, and a config without the sync check fails the create
 * job instead of making a guest its start refuses. Answers about missing
 * images never show the host's images folder. No guest is booted: every
 * refusal comes before QEMU would start.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';

function qemuConfig(imagesDir: string, withoutChecks = false): any {
  const config = shippedConfig('qemu.json');
  const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
  entry.options = { ...entry.options, accel: 'tcg', imagesDir };
  const images = config.plugins.find((p: { module: string }) => p.module === 'images');
  if (images) images.options = { ...images.options, imagesDir };
  // A config whose create has no sync checks reaches the plugin's own create and start.
  if (withoutChecks) config.actions.create = { async: ['qemu.create', 'qemu.start'] };
  return { ...config, logLevel: 'info' };
}

/** A create as Go's client sends it: every field present, zero values, null slices. */
function goCreate(fields: Record<string, unknown>): Record<string, unknown> {
  return { id: '', type: '', image: '', memory: 64, cpu: 1, nics: null, disks: [{ bus: '', size: 8, image: '', volume: '' }], metadata: null, ...fields };
}
function goNic(fields: Record<string, unknown>): Record<string, unknown> {
  return { name: '', network: '', model: '', mac: '', address: '', netmask: '', gateway: '', vlans: null, ...fields };
}

describe('QEMU: create checks through the agent (real QEMU plugin, no guest booted)', function () {
  this.timeout(120000);
  let root: string;
  let imagesDir: string;
  let agent: RunningAgent | undefined;

  before(async () => {
    root = await makeTempDir('hkqc-');
    imagesDir = path.join(root, 'images-folder-of-this-host');
    await mkdir(imagesDir);
  });
  afterEach(async () => {
    await agent?.stop();
    if (agent) await removeDir(agent.dataDir);
    agent = undefined;
  });
  after(async () => {
    if (root) await removeDir(root);
  });

  async function guestCount(a: RunningAgent): Promise<number> {
    return (await a.request('GET', '/guests')).body.length;
  }

  it('answers 400 naming the field for NIC names, models and disk buses QEMU would refuse; nothing is created', async () => {
    agent = await startAgent({ config: qemuConfig(imagesDir), env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      // The kernel takes these names; QEMU ids must start with a letter and have no ':'.
      [goCreate({ nics: [goNic({ name: '0eth' })] }), /^nics\.0\.name: "0eth" is not a name QEMU takes/],
      [goCreate({ nics: [goNic({}), goNic({ name: 'net:1' })] }), /^nics\.1\.name: "net:1" is not a name QEMU takes/],
      [goCreate({ nics: [goNic({ name: '_x' })] }), /^nics\.0\.name: /],
      [goCreate({ nics: [goNic({ model: 'ne2k_pci' })] }), /^nics\.0\.model: nic net0: unknown model "ne2k_pci"/],
      // q35 has six SATA ports: a seventh SATA disk (sdg) cannot be attached.
      [goCreate({ disks: Array.from({ length: 7 }, () => ({ bus: 'sata', size: 8, image: '', volume: '' })) }), /^disks\.6: disk sdg: the q35 machine has six SATA\/IDE ports/],
    ];
    for (const [body, message] of cases) {
      const res = await agent.request('POST', '/guests', body);
      expect(res.status, res.text).to.equal(400);
      expect(res.body.message).to.match(message);
      expect(res.headers.get('x-guest-job-id'), 'a refused create queues no job').to.equal(null);
    }
    expect(await guestCount(agent), 'no guest from a refused create').to.equal(0);
    expect((await agent.request('GET', '/jobs')).body, 'no job from a refused create').to.deep.equal([]);
    // Names QEMU takes pass the check (the guest is made, left off: nothing boots).
    const ok = await agent.request('POST', '/guests?start=false&wait=30', goCreate({ nics: [goNic({ name: 'eth0.1' }), goNic({ name: 'e-1_b' })] }));
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.body.state).to.equal('off');
    expect(ok.body.nics.map((n: { name: string }) => n.name)).to.deep.equal(['eth0.1', 'e-1_b']);
    expect((await agent.request('DELETE', `/guests/${ok.body.id}?wait=30`)).status).to.equal(200);
  });

  it('without the sync check, fails the create job with the same reason and builds nothing', async () => {
    agent = await startAgent({ config: qemuConfig(imagesDir, true), env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const res = await agent.request('POST', '/guests?wait=30', goCreate({ nics: [goNic({ name: '0eth' })] }));
    expect(res.status, res.text).to.equal(500);
    expect(res.body.job.Status).to.equal('Error');
    expect(res.body.job.Message).to.match(/nics\.0\.name: "0eth" is not a name QEMU takes/);
    const guest = (await agent.request('GET', '/guests')).body[0];
    expect(guest.state).to.equal('error');
    const runDirs = await import('node:fs/promises').then((fs) => fs.readdir(path.join(agent!.dataDir, 'plugins', 'qemu')).catch(() => []));
    expect(runDirs, 'no run dir for a refused create').to.not.include(guest.id);
    expect((await agent.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);
  });

  it('names a missing image, kernel or initrd by its id only, never the host images folder', async () => {
    agent = await startAgent({ config: qemuConfig(imagesDir, true), env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const bodies: Array<[string, Record<string, unknown>, RegExp]> = [
      ['a missing disk image', goCreate({ disks: [{ bus: '', size: 0, image: 'no-such-image', volume: '' }] }), /image "no-such-image" not found in the images folder/],
      ['an image path', goCreate({ disks: [{ bus: '', size: 0, image: '../../etc/passwd', volume: '' }] }), /image "\.\.\/\.\.\/etc\/passwd" must be a file name in the images folder, not a path/],
    ];
    for (const [what, body, message] of bodies) {
      const res = await agent.request('POST', '/guests?wait=30', body);
      expect(res.status, `${what}: ${res.text}`).to.equal(500);
      expect(res.body.job.Message, what).to.match(message);
      for (const text of [res.text, (await agent.request('GET', '/jobs')).text, (await agent.request('GET', '/guests')).text]) {
        expect(text, `${what}: no host path`).to.not.include(imagesDir).and.not.include(root).and.not.include(agent.dataDir);
      }
    }
    // A guest booting a kernel that is not there: start refuses before QEMU runs.
    const created = await agent.request('POST', '/guests?start=false&wait=30', goCreate({ metadata: { 'qemu.kernel': 'no-such-vmlinuz' } }));
    expect(created.status, created.text).to.equal(200);
    const start = await agent.request('POST', `/guests/${created.body.id}/start?wait=30`);
    expect(start.status, start.text).to.equal(500);
    expect(start.body.job.Message, 'a kernel is called a kernel').to.match(/^.*kernel "no-such-vmlinuz" not found in the images folder/);
    expect(start.text, 'no host path').to.not.include(imagesDir).and.not.include(agent.dataDir);
    for (const guest of (await agent.request('GET', '/guests')).body) {
      expect((await agent.request('DELETE', `/guests/${guest.id}?wait=30`)).status).to.equal(200);
    }
  });
});
