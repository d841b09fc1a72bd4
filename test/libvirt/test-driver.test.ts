/**
 * The libvirt backend through the real agent on libvirt's test driver
 * (test:///default, chosen with HYPERKERN_LIBVIRT_URI as an operator would):
 * no daemon and no QEMU, so these run in a second. The test driver keeps its
 * state inside the agent's own virsh connection; it starts with one running
 * domain, "test", which must be left alone unless adopted.
 */
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { makeTempDir, removeDir, repoRoot, startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';

describe('libvirt backend on the test driver (test:///default)', function () {
  this.timeout(30000);
  let agent: RunningAgent;

  let fetchDir: string;

  /** The shipped config, with fetched images in this run's own folder rather than ./images/fetched. */
  function config(): any {
    const c = shippedConfig('libvirt.json');
    c.plugins.find((p: { module: string }) => p.module === 'libvirt').options.fetchDir = fetchDir;
    c.plugins.find((p: { module: string }) => p.module === 'images').options.imagesDir = fetchDir;
    return { ...c, logLevel: 'info' };
  }

  before(async () => {
    fetchDir = await makeTempDir('hkt-libvirt-fetch-');
    agent = await startAgent({ config: config(), env: { HYPERKERN_LIBVIRT_URI: 'test:///default' } });
  });
  after(async () => {
    await agent?.stop();
    // startAgent writes the config next to the data dir; remove both.
    if (agent) await Promise.all([removeDir(agent.dataDir), rm(`${agent.dataDir}.config.json`, { force: true })]);
    await removeDir(fetchDir);
  });

  async function create(body: object, query = ''): Promise<{ status: number; guest: any; job: any }> {
    const res = await agent.request('POST', `/guests?wait=10${query}`, body);
    const job = (await agent.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    // A failed create answers with the error and its job; the guest stays, in state "error".
    const guest = res.status === 200 ? res.body : (await agent.request('GET', `/guests/${job.GuestID}`)).body;
    return { status: res.status, guest, job };
  }
  async function act(id: string, action: string): Promise<any> {
    const res = await agent.request('POST', `/guests/${id}/${action}?wait=10`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    const job = (await agent.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    expect(job.Status, `${action} job: ${job.Message}`).to.equal('Complete');
    return res.body;
  }

  it('uses the URI from HYPERKERN_LIBVIRT_URI and says so in health', async () => {
    const health = await agent.request('GET', '/health');
    const text = JSON.stringify(health.body);
    expect(text).to.contain('test:///default');
    expect(agent.logs.some((l) => l.includes('"uriSource":"HYPERKERN_LIBVIRT_URI"')), 'logged where the URI came from').to.equal(true);
  });

  it('takes a guest through every action, with states and metrics in the mistify shapes', async () => {
    const { status, guest, job } = await create({ memory: 256, cpu: 2, disks: [{ size: 64 }, { size: 32, bus: 'scsi' }], nics: [{ network: 'default' }] }, '&start=false');
    expect(status, JSON.stringify(job)).to.equal(200);
    expect(job.Status).to.equal('Complete');
    expect(guest.state).to.equal('off');
    expect(guest.metadata['libvirt.domain']).to.equal(`hk-${guest.id}`);
    expect(guest.disks.map((d: any) => d.volume)).to.deep.equal([`default-pool/hk-${guest.id}-vda.qcow2`, `default-pool/hk-${guest.id}-sda.qcow2`]);
    expect(guest.disks[0].source).to.match(/hk-.*-vda\.qcow2$/);
    const id = guest.id;

    expect((await agent.request('GET', `/guests/${id}/metrics/cpu`)).status, 'metrics of a guest that is off').to.equal(409);
    expect((await act(id, 'start')).state).to.equal('running');

    const cpu = (await agent.request('GET', `/guests/${id}/metrics/cpu`)).body;
    expect(cpu).to.have.length(2);
    for (const entry of cpu) expect(entry).to.have.all.keys('cpu_time', 'vcpu_time');
    const disk = (await agent.request('GET', `/guests/${id}/metrics/disk`)).body;
    expect(disk).to.have.all.keys('vda', 'sda');
    expect(disk.vda).to.have.all.keys('disk', 'read_ops', 'read_bytes', 'read_time', 'write_ops', 'write_bytes', 'write_time', 'flush_ops', 'flush_time');
    expect(disk.vda.disk).to.equal('vda');
    const nic = (await agent.request('GET', `/guests/${id}/metrics/nic`)).body;
    expect(nic).to.have.all.keys('net0');
    expect(nic.net0).to.have.all.keys('name', 'rx_bytes', 'rx_packets', 'rx_errors', 'rx_drops', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_drops');

    expect((await act(id, 'suspend')).state).to.equal('suspended');
    expect((await act(id, 'start')).state, 'start resumes a suspended guest').to.equal('running');
    expect((await act(id, 'reboot')).state).to.equal('running');
    expect((await act(id, 'restart')).state).to.equal('running');
    expect((await act(id, 'shutdown')).state).to.equal('shutdown');
    const again = await agent.request('POST', `/guests/${id}/shutdown`);
    expect(again.status, 'shutdown of a guest that is shut down').to.equal(409);
    expect((await act(id, 'start')).state).to.equal('running');
    expect((await act(id, 'poweroff')).state).to.equal('off');
    const gone = await agent.request('DELETE', `/guests/${id}?wait=10`);
    expect(gone.status, gone.text).to.equal(200);
    expect((await agent.request('GET', `/guests/${id}`)).status).to.equal(404);
  });

  it('fails a create clearly for a missing kernel, a kernel path or a client-chosen disk file, leaving nothing behind', async () => {
    const { job, guest } = await create({ disks: [{ size: 8 }], metadata: { 'libvirt.kernel': 'no-such-vmlinuz' } });
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.contain('kernel "no-such-vmlinuz" not found in the images folder');
    // The folder (config/libvirt.json's ./images, resolved on this host) is never in a message.
    expect(job.Message, 'no host path').to.not.include(repoRoot).and.not.include('/images');
    expect((await agent.request('GET', `/guests/${guest.id}`)).body.state).to.equal('error');
    // The failed create left no volume behind: deleting the record is all that is needed.
    expect((await agent.request('DELETE', `/guests/${guest.id}?wait=10`)).status).to.equal(200);

    const path = await create({ metadata: { 'libvirt.kernel': '../etc/passwd' } });
    expect(path.job.Message).to.contain('must be a file name in the images folder');
    expect(path.job.Message, 'no host path').to.not.include(repoRoot);
    await agent.request('DELETE', `/guests/${path.guest.id}?wait=10`);

    // An image the pool lacks is refused at once (libvirt.requireImages), before any job.
    const missingImage = await agent.request('POST', '/guests?wait=10', { disks: [{ size: 8 }, { image: 'no-such-image' }] });
    expect(missingImage.status).to.equal(400);
    expect(missingImage.body.message).to.contain('image "no-such-image" is not in libvirt storage pool "default-pool"');
    // Without that check (a config whose create has no sync stages) the create job refuses it,
    // after the first disk's volume was made: that volume must go again.
    const unchecked = config();
    unchecked.actions.create = { async: ['libvirt.create', 'libvirt.start'] };
    const bare = await startAgent({ config: unchecked, env: { HYPERKERN_LIBVIRT_URI: 'test:///default' } });
    try {
      const sameId = randomUUID();
      const res = await bare.request('POST', '/guests?wait=10', { id: sameId, disks: [{ size: 8 }, { image: 'no-such-image' }] });
      const job = (await bare.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
      expect(job.Status).to.equal('Error');
      expect(job.Message).to.contain('image "no-such-image" is not a volume of storage pool');
      expect((await bare.request('DELETE', `/guests/${sameId}?wait=10`)).status).to.equal(200);
      const again = await bare.request('POST', '/guests?wait=10&start=false', { id: sameId, disks: [{ size: 8 }] });
      expect(again.status, `the same guest id again finds no stale volume: ${again.text}`).to.equal(200);
      expect((await bare.request('DELETE', `/guests/${sameId}?wait=10`)).status).to.equal(200);
    } finally {
      await bare.stop();
      await rm(bare.dataDir, { recursive: true, force: true });
    }
    const id = randomUUID();
    // A client's disk source (a Go client sends the one it last saw) is ignored: the agent makes its own.
    const retry = await create({ id, disks: [{ size: 8, source: '/etc/shadow' }] });
    expect(retry.job.Status, retry.job.Message).to.equal('Complete');
    expect(retry.guest.disks[0].source).to.match(/hk-.*-vda\.qcow2$/);
    expect(retry.guest.state, 'the create booted the guest').to.equal('running');
    await agent.request('DELETE', `/guests/${id}?wait=10`);
  });

  it('leaves the driver\'s own "test" domain alone, and adopts it only when asked', async () => {
    const before = (await agent.request('GET', '/guests')).body as any[];
    expect(before.map((g) => g.metadata['libvirt.domain'])).to.not.include('test');

    const { guest, job } = await create({ metadata: { 'libvirt.adopt': 'test' } });
    expect(job.Status, job.Message).to.equal('Complete');
    expect(guest.state, 'its state comes from libvirt').to.equal('running');
    expect(guest.cpu).to.equal(2);
    expect(guest.memory).to.equal(8192);
    expect(guest.disks).to.deep.equal([{ bus: 'virtio', device: 'vda', size: 0, volume: '', image: '', source: '/guest/diskimage1' }]);
    expect(guest.nics[0]).to.include({ name: 'net0', network: 'default', mac: 'aa:bb:cc:dd:ee:ff', device: 'testnet0' });
    expect(guest.metadata).to.include({ 'libvirt.domain': 'test', 'libvirt.adopted': 'true', 'libvirt.uuid': '6695eb01-f6a4-8304-79aa-97f2502e193f' });
    const nic = (await agent.request('GET', `/guests/${guest.id}/metrics/nic`)).body;
    expect(nic).to.have.all.keys('net0');

    const twice = await create({ metadata: { 'libvirt.adopt': 'test' } });
    expect(twice.job.Status).to.equal('Error');
    expect(twice.job.Message).to.contain(`already managed as guest ${guest.id}`);
    await agent.request('DELETE', `/guests/${twice.guest.id}?wait=10`);

    const missing = await create({ metadata: { 'libvirt.adopt': 'no-such-domain' } });
    expect(missing.job.Message).to.contain('cannot adopt libvirt domain "no-such-domain"');
    await agent.request('DELETE', `/guests/${missing.guest.id}?wait=10`);

    expect((await act(guest.id, 'suspend')).state).to.equal('suspended');
    const gone = await agent.request('DELETE', `/guests/${guest.id}?wait=10`);
    expect(gone.status, gone.text).to.equal(200);
    const deleteJob = (await agent.request('GET', `/jobs/${gone.headers.get('x-guest-job-id')}`)).body;
    expect(deleteJob.Message).to.contain('libvirt domain test');
    // Undefined now: adopting it again is refused because it no longer exists.
    const after = await create({ metadata: { 'libvirt.adopt': 'test' } });
    expect(after.job.Message).to.contain('cannot adopt libvirt domain "test"');
    await agent.request('DELETE', `/guests/${after.guest.id}?wait=10`);
  });

  it('never builds a disk on another guest\'s volume, by name or by pool path, nor on a name virsh would read as an option', async () => {
    const victim = await create({ disks: [{ size: 16 }] }, '&start=false');
    expect(victim.status, JSON.stringify(victim.job)).to.equal(200);
    const volume = victim.guest.disks[0].volume.split('/')[1];
    const attempts: Array<[string, RegExp]> = [
      [volume, /is a guest's disk, not an image/],
      [victim.guest.disks[0].source, /plain name of a volume/],
      [`hk-${randomUUID()}-vda.qcow2`, /is a guest's disk, not an image/],
      ['--pool=other', /no leading "-"/],
    ];
    // Refused at once by libvirt.requireImages, before virsh sees the name.
    const guestsBefore = (await agent.request('GET', '/guests')).body.map((g: any) => g.id).sort();
    for (const [image, refusal] of attempts) {
      const attacker = await agent.request('POST', '/guests?wait=10&start=false', { disks: [{ image }] });
      expect(attacker.status, `image ${image}`).to.equal(400);
      expect(attacker.body.message, `image ${image}`).to.match(refusal);
    }
    const viaGuestImage = await agent.request('POST', '/guests?wait=10&start=false', { image: volume, disks: [{ size: 16 }] });
    expect(viaGuestImage.status).to.equal(400);
    expect(viaGuestImage.body.message).to.match(/is a guest's disk/);
    const guestsAfter = (await agent.request('GET', '/guests')).body.map((g: any) => g.id).sort();
    expect(guestsAfter, 'no guest record was made for a refused create').to.deep.equal(guestsBefore);
    await agent.request('DELETE', `/guests/${victim.guest.id}?wait=10`);
  });

  it('keeps libvirt.domain and the other plugin-owned keys out of clients\' hands', async () => {
    const { guest } = await create({ metadata: { 'libvirt.domain': 'test', 'libvirt.adopted': 'true', mine: 'yes' } }, '&start=false');
    expect(guest.metadata['libvirt.domain'], 'a create body cannot choose the domain').to.equal(`hk-${guest.id}`);
    expect(guest.metadata).to.not.have.property('libvirt.adopted');
    expect(guest.metadata.mine).to.equal('yes');
    for (const patch of [{ 'libvirt.domain': 'test' }, { 'libvirt.domain': null }, { 'libvirt.uuid': '' }, { 'hyperkern.error': 'x' }]) {
      const res = await agent.request('PATCH', `/guests/${guest.id}/metadata`, patch);
      expect(res.status, JSON.stringify(patch)).to.equal(400);
      expect(res.body.message).to.contain(`metadata key "${Object.keys(patch)[0]}" belongs to`);
    }
    // What a client read may be sent back unchanged.
    const echoed = await agent.request('PATCH', `/guests/${guest.id}/metadata`, { ...guest.metadata, mine: 'still' });
    expect(echoed.status, echoed.text).to.equal(200);
    expect((await agent.request('GET', `/guests/${guest.id}`)).body.metadata['libvirt.domain']).to.equal(`hk-${guest.id}`);
    await agent.request('DELETE', `/guests/${guest.id}?wait=10`);
    expect((await agent.request('GET', '/guests')).body.some((g: any) => g.metadata?.['libvirt.domain'] === 'test')).to.equal(false);
  });

  it('refuses a NIC network that is not a bridge or network name (no /sys path tricks)', async () => {
    const { job, guest } = await create({ nics: [{ network: '../../../etc' }] }, '&start=false');
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.contain('is not a bridge or libvirt network name');
    await agent.request('DELETE', `/guests/${guest.id}?wait=10`);
  });

  it('answers a move of a libvirt guest 501 with the reason (libvirt moves its own domains; docs/migration.md), changing nothing', async () => {
    const { status, guest } = await create({ memory: 64, cpu: 1, disks: [{ size: 8 }] });
    expect(status).to.equal(200);
    const res = await agent.request('POST', `/guests/${guest.id}/migrate`, { url: 'http://127.0.0.1:9', token: '' });
    expect(res.status, res.text).to.equal(501);
    expect(res.body.error).to.equal('HK_ERR_ACTION_NOT_CONFIGURED');
    expect(res.body.message).to.contain(`guest ${guest.id} cannot be moved`).and.contain('virsh migrate --live --copy-storage-all').and.contain('run it on the qemu backend');
    expect(res.headers.get('x-guest-job-id'), 'no job').to.equal(null);
    expect((await agent.request('GET', `/guests/${guest.id}`)).body.state).to.equal('running');
    await agent.request('DELETE', `/guests/${guest.id}?wait=10`);
  });
});
