/**
 * Images as volumes of the libvirt storage pool, through the real agent
 * (config/libvirt.json) against a real libvirtd: an upload made a volume
 * through vol-upload, a fetch from a loopback server imported the same way,
 * refusals (backing file, checksum, leading "-"), a guest's disks built on
 * the image, delete refused while they are, and a half-uploaded volume left
 * by a dead agent removed at the next start.
 */
import { expect } from 'chai';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { removeDir, startAgent, type RunningAgent } from '../support/agent.js';
import { hasPattern, makeOverlay, makeQcow2, sha256Of } from '../support/image-files.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';
import { LibvirtWorld, SYSTEM_URI, virsh } from './world.js';
import { watchOpens } from '../support/file-watch.js';
import { rawExchange } from '../support/raw-http.js';

/** PUT a file as the request body, streamed (as curl -T does). */
function upload(url: string, file: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    void stat(file).then(({ size }) => {
      const req = httpRequest(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
      });
      req.on('error', reject);
      createReadStream(file).pipe(req);
    }, reject);
  });
}

describe('libvirt images: volumes of the storage pool (real libvirtd)', function () {
  this.timeout(300_000);
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;
  let files: string;
  let server: ImageServer;
  const dataDirs: string[] = [];

  before(async function () {
    this.timeout(300_000);
    world = await LibvirtWorld.create();
    files = path.join(world.root, 'files');
    await mkdir(files);
    await makeQcow2(files, 'base.qcow2', 64, 4);
    await makeOverlay(files, 'overlay.qcow2', path.join(files, 'base.qcow2'));
    server = await startImageServer(files);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agent) console.error(agent.logs.slice(-30).join('\n'));
    await agent?.stop();
    agent = undefined;
  });
  after(async function () {
    await server?.close();
    if (!world) return;
    await world.dispose();
    for (const dir of dataDirs) await Promise.all([removeDir(dir), rm(`${dir}.config.json`, { force: true })]);
  });

  async function start(dataDir?: string, extra: Record<string, unknown> = {}): Promise<RunningAgent> {
    agent = await startAgent({ config: { ...world.config(extra), logLevel: 'info' }, dataDir, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
    if (!dataDirs.includes(agent.dataDir)) dataDirs.push(agent.dataDir);
    return agent;
  }
  const volumePath = async (name: string) => (await virsh(SYSTEM_URI, 'vol-path', '--pool', world.pool, name)).trim();

  it('makes an upload a qcow2 volume of the pool through libvirt, and refuses images with a backing file, a wrong checksum or a name virsh would read as an option', async () => {
    const a = await start();
    const id = `${world.prefix}up.qcow2`;
    const stored = await upload(`${a.url}/images/${id}`, path.join(files, 'base.qcow2'));
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    expect(stored.body).to.deep.equal({ id, type: 'kvm', volume: `${world.pool}/${id}`, snapshot: '', size: 64, status: 'complete' });
    const xml = await virsh(SYSTEM_URI, 'vol-dumpxml', '--pool', world.pool, id);
    expect(xml, 'libvirt sees a qcow2 of the image\'s virtual size').to.contain("<format type='qcow2'/>").and.contain("<capacity unit='bytes'>67108864</capacity>");
    expect(await hasPattern(await volumePath(id), 'qcow2', 0xab, '0', '4M'), 'the volume holds the uploaded data').to.equal(true);
    expect((await a.request('GET', `/images/${id}`)).body).to.deep.equal(stored.body);
    expect((await a.request('GET', '/images')).body.map((i: any) => i.id)).to.deep.equal([id]);

    const backed = await upload(`${a.url}/images/${world.prefix}backed`, path.join(files, 'overlay.qcow2'));
    expect(backed.status).to.equal(422);
    expect(backed.body.message).to.contain('backing file');
    const wrong = await upload(`${a.url}/images/${world.prefix}wrong?sha256=${'1'.repeat(64)}`, path.join(files, 'base.qcow2'));
    expect(wrong.status).to.equal(422);
    expect(wrong.body.message).to.contain('sha256 mismatch');
    const right = await upload(`${a.url}/images/${world.prefix}right?sha256=${await sha256Of(path.join(files, 'base.qcow2'))}`, path.join(files, 'base.qcow2'));
    expect(right.status, JSON.stringify(right.body)).to.equal(201);
    const dash = await upload(`${a.url}/images/--pool=default`, path.join(files, 'base.qcow2'));
    expect(dash.status).to.equal(400);
    expect(dash.body.message).to.contain('start with a letter or digit');
    expect((await a.request('GET', '/images/-x')).status).to.equal(400);
    expect((await world.volumes()).sort(), 'refused uploads left no volume').to.deep.equal([`${world.prefix}right`, id].sort());
    expect(await readdir(path.join(a.dataDir, 'plugins', 'libvirt', 'image-uploads')), 'no temporary file stays').to.deep.equal([]);

    expect((await a.request('DELETE', `/images/${world.prefix}right?wait=30`)).status).to.equal(200);
    expect((await a.request('DELETE', `/images/${id}?wait=30`)).status).to.equal(200);
    expect(await world.volumes()).to.deep.equal([]);
    expect((await a.request('GET', `/images/${id}`)).status).to.equal(404);
  });

  it('refuses a VMDK descriptor naming a host file without anything opening it, the same answer whether it exists', async () => {
    const a = await start();
    const secret = path.join(files, 'secret');
    await writeFile(secret, 'root:$6$hash:19000:0:99999:7:::\n');
    const vmdk = (target: string) => `# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "${target}" 0\n`;
    await writeFile(path.join(files, 'shadow.vmdk'), vmdk(secret));
    await writeFile(path.join(files, 'nope.vmdk'), vmdk(path.join(files, 'nope')));
    const watch = await watchOpens([secret]);
    const put = [await upload(`${a.url}/images/${world.prefix}v1`, path.join(files, 'shadow.vmdk')), await upload(`${a.url}/images/${world.prefix}v2`, path.join(files, 'nope.vmdk'))];
    const fetched = [
      await a.request('POST', '/images?wait=60', { id: `${world.prefix}v3`, source: `${server.url}/shadow.vmdk` }),
      await a.request('POST', '/images?wait=60', { id: `${world.prefix}v4`, source: `${server.url}/nope.vmdk` }),
    ];
    expect(await watch.stop(), 'neither the agent, qemu-img nor libvirtd opened the named file').to.deep.equal([]);
    for (const res of put) expect(res.status, JSON.stringify(res.body)).to.equal(422);
    expect(put[0].body.message).to.match(/format "vmdk" is not accepted/);
    expect(put[1].body.message.replace('v2', 'v1'), 'no hint whether the path exists').to.equal(put[0].body.message);
    for (const res of fetched) expect(res.status, res.text).to.equal(500);
    expect(fetched[1].body.job.Message.replace('v4', 'v3')).to.equal(fetched[0].body.job.Message);
    for (const message of [...put.map((r) => r.body.message), ...fetched.map((r) => r.body.job.Message)]) expect(message).to.not.include(files);
    expect(await world.volumes(), 'no volume made').to.deep.equal([]);
  });

  it('answers an upload over maxImageSizeMiB with 413 while the client still sends (announced or chunked), and stores an image whose id has 255 characters', async () => {
    const a = await start(undefined, { maxImageSizeMiB: 1 });
    for (const contentLength of [true, false]) {
      const refused = await rawExchange(a.url, 'PUT', `/images/${world.prefix}big`, { bytes: 16 * 1024 * 1024, contentLength });
      expect(refused.ending, 'no reset under the answer').to.not.equal('reset');
      expect(refused.answer?.status, JSON.stringify(refused.answer?.body)).to.equal(413);
      expect(refused.answer!.body).to.include({ code: 413 });
      expect(refused.answer!.body.message).to.match(/limit of 1 MiB/);
    }
    const long = `${world.prefix}${'l'.repeat(255 - world.prefix.length)}`;
    const small = await makeQcow2(files, 'small.qcow2', 8, 0);
    const stored = await upload(`${a.url}/images/${long}`, small);
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    expect(stored.body.id).to.equal(long);
    expect((await a.request('DELETE', `/images/${long}?wait=30`)).status).to.equal(200);
    expect(await world.volumes()).to.deep.equal([]);
  });

  it('imports a fetched image into the pool, builds guests\' disks on it, and refuses to delete it while they are', async () => {
    const a = await start();
    const id = `${world.prefix}fetched`;
    const fetched = await a.request('POST', '/images?wait=120', { id, type: '', dest: '', source: `${server.url}/base.qcow2`, sha256: '' });
    expect(fetched.status, fetched.text).to.equal(200);
    const job = (await a.request('GET', `/jobs/${fetched.headers.get('x-guest-job-id')}`)).body;
    expect(job.Status, job.Message).to.equal('Complete');
    expect((await a.request('GET', `/images/${id}`)).body).to.include({ id, size: 64, status: 'complete', volume: `${world.pool}/${id}` });
    expect(await readdir(world.fetchDir), 'the fetched file went into the pool').to.deep.equal([]);
    // Fetched again (as mistify's cluster manager does before each create): the pool's volume stays.
    const again = await a.request('POST', '/images?wait=120', { id, type: '', dest: '', source: `${server.url}/base.qcow2`, sha256: '' });
    expect(again.status, again.text).to.equal(200);

    const guest = (await a.request('POST', '/guests?wait=60&start=false', { image: id, metadata: { ...world.tinyBoot }, disks: [{ image: id }, { image: id, size: 96 }] })).body;
    expect(guest.disks.map((d: any) => [d.image, d.size])).to.deep.equal([
      [id, 64],
      [id, 96],
    ]);
    for (const disk of guest.disks) {
      expect(await hasPattern(disk.source, 'qcow2', 0xab, '0', '4M'), `${disk.device} reads the image's data through its overlay`).to.equal(true);
    }
    const refused = await a.request('DELETE', `/images/${id}`);
    expect(refused.status).to.equal(409);
    expect(refused.body.message).to.contain(`in use by guest ${guest.id}`);
    const missing = await a.request('POST', '/guests?wait=30&start=false', { disks: [{ image: `${world.prefix}no-such` }] });
    expect(missing.status, 'a missing image is refused before any job').to.equal(400);
    expect(missing.body.message).to.contain(`is not in libvirt storage pool "${world.pool}"`);

    expect((await a.request('DELETE', `/guests/${guest.id}?wait=60`)).status).to.equal(200);
    expect((await a.request('DELETE', `/images/${id}?wait=30`)).status).to.equal(200);
    expect(await world.volumes()).to.deep.equal([]);
  });

  it('deletes at start a volume whose upload an agent did not finish', async () => {
    const a = await start();
    const dataDir = a.dataDir;
    await a.stop();
    agent = undefined;
    const half = `${world.prefix}half`;
    await virsh(SYSTEM_URI, 'vol-create-as', world.pool, half, '1M', '--format', 'raw');
    const kept = `${world.prefix}kept`;
    await virsh(SYSTEM_URI, 'vol-create-as', world.pool, kept, '1M', '--format', 'raw');
    // What importFile leaves while vol-upload runs: a marker naming the volume.
    await writeFile(path.join(dataDir, 'plugins', 'libvirt', 'image-uploads', 'abc.uploading'), half);
    const b = await start(dataDir);
    expect(await world.volumes(), 'only the unfinished volume went').to.deep.equal([kept]);
    expect((await b.request('GET', '/images')).body.map((i: any) => i.id)).to.deep.equal([kept]);
    expect((await b.request('DELETE', `/images/${kept}?wait=30`)).status).to.equal(200);
  });
});
