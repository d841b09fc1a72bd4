/**
 * The image API through the real kernel (in-process: config, SQLite, HTTP)
 * with the images plugin beside the simulator, fetching from a real
 * loopback server; a kill -9 mid-fetch in a child agent.
 */
import { expect } from 'chai';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request as httpRequest } from 'node:http';
import { makeTempDir, removeDir, waitFor } from '../support/agent.js';
import { agentsPerTest, suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig, withImages } from '../support/configs.js';
import { makeQcow2, makeRaw, qemuImg, sha256Of } from '../support/image-files.js';
import { watchOpens } from '../support/file-watch.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';

/** PUT a file as the request body, streamed (as curl -T does). */
function upload(url: string, file: string | null, size: number | undefined, body?: Readable): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (size !== undefined) headers['content-length'] = String(size);
    const req = httpRequest(url, { method: 'PUT', headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    (body ?? createReadStream(file!)).pipe(req);
  });
}

describe('image API', function () {
  this.timeout(120_000);
  let work: string;
  let served: string;
  let imagesDir: string;
  let server: ImageServer;

  before(async () => {
    work = await makeTempDir('hk-image-api-');
    served = path.join(work, 'served');
    imagesDir = path.join(work, 'images');
    await mkdir(served);
    await makeQcow2(served, 'base.qcow2', 64, 4);
    await makeRaw(served, 'disk.raw', 8);
    server = await startImageServer(served);
  });
  const agent = suiteAgent(() => ({ config: withImages(simulatorConfig(), { imagesDir }) }));
  const children = agentsPerTest();

  after(async () => {
    await server?.close();
    await removeDir(work);
  });

  afterEach(function () {
    // The agent's own account of a failure is the quickest way to its cause.
    if (this.currentTest?.state === 'failed') console.error(agent.logs.slice(-20).join('\n'));
  });

  const leftovers = async () => (await readdir(imagesDir)).filter((n) => n.startsWith('.'));

  it('fetches an image as a job on the job log: 202, X-Guest-Job-ID, then complete', async () => {
    const res = await agent.request('POST', '/images', { id: 'deb', type: '', dest: '', source: `${server.url}/base.qcow2`, extra: 'ignored' });
    expect(res.status, res.text).to.equal(202);
    expect(res.body).to.include({ id: 'deb', status: 'pending' });
    const jobId = res.headers.get('x-guest-job-id')!;
    const job = await waitFor(async () => {
      const j = await agent.request('GET', `/jobs/${jobId}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 30_000, 'the fetch job to end');
    expect(job).to.include({ Action: 'fetchImage', Status: 'Complete', GuestID: '' });
    expect(job.Message).to.match(/image deb is ready \(64 MiB\)/);
    expect((await agent.request('GET', '/images/deb')).body).to.deep.equal({ id: 'deb', type: 'kvm', volume: 'deb', snapshot: '', size: 64, status: 'complete' });
    expect((await agent.request('GET', '/images')).body.map((i: { id: string }) => i.id)).to.include('deb');
    expect((await agent.request('GET', '/images?type=kvm')).body).to.have.length.greaterThan(0);
  });

  it('answers a fetch of an image already here with a completed job (managers fetch before every create)', async () => {
    const res = await agent.request('POST', '/images?wait=30', { id: 'deb', source: `${server.url}/base.qcow2` });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ id: 'deb', status: 'complete' });
  });

  it('shows progress on the running job and refuses a second fetch of the same id with 409', async () => {
    const res = await agent.request('POST', '/images', { id: 'slow', source: `${server.url}/slow/base.qcow2` });
    expect(res.status, res.text).to.equal(202);
    const again = await agent.request('POST', '/images', { id: 'slow', source: `${server.url}/base.qcow2` });
    expect(again.status, again.text).to.equal(409);
    expect(again.body.message).to.match(/image slow has a fetch or delete in progress/);
    const jobId = res.headers.get('x-guest-job-id')!;
    const progress = await waitFor(async () => {
      const j = (await agent.request('GET', `/jobs/${jobId}`)).body;
      return j.Status === 'Running' && /transferring: \d+ of \d+ bytes/.test(j.Message) ? j.Message : undefined;
    }, 30_000, 'progress on the job');
    expect(progress).to.match(/transferring: [1-9]\d* of \d+ bytes \(\d+%\)/);
    expect((await agent.request('GET', '/images/slow')).body).to.include({ status: 'pending' });
    const end = await waitFor(async () => {
      const j = (await agent.request('GET', `/jobs/${jobId}`)).body;
      return j.Status === 'Complete' || j.Status === 'Error' ? j : undefined;
    }, 90_000, 'the slow fetch to end');
    expect(end.Status, end.Message).to.equal('Complete');
  });

  it('ends a fetch as Error naming the cause, leaving nothing: checksum mismatch, server dying, wrong format', async () => {
    const mismatch = await agent.request('POST', `/images?wait=30&sha256=${'0'.repeat(64)}`, { id: 'bad', source: `${server.url}/base.qcow2` });
    expect(mismatch.status, mismatch.text).to.equal(500);
    expect(mismatch.body.job.Message).to.match(/sha256 mismatch: expected 0{64}/);
    const died = await agent.request('POST', '/images?wait=30', { id: 'cut', source: `${server.url}/die/base.qcow2` });
    expect(died.body.job.Message).to.match(/fetch of image cut failed: .*(closed the connection|ended after)/);
    const missing = await agent.request('POST', '/images?wait=30', { id: 'gone', source: `${server.url}/missing/x` });
    expect(missing.body.job.Message).to.match(/answered HTTP 404/);
    expect(await leftovers()).to.deep.equal([]);
    for (const id of ['bad', 'cut', 'gone']) expect((await agent.request('GET', `/images/${id}`)).status).to.equal(404);
  });

  it('takes Go zero values and refuses bad requests with a 400 naming the field or option', async () => {
    const empty = await agent.request('POST', '/images', { id: 'x', type: '', dest: '', source: '' });
    expect(empty.status).to.equal(400);
    expect(empty.body.message).to.match(/imageServer/);
    const nullSource = await agent.request('POST', '/images', { id: 'x', type: null, dest: null, source: null });
    expect(nullSource.status).to.equal(400);
    expect(nullSource.body.message).to.match(/imageServer/);
    const noBody = await agent.request('POST', '/images', null);
    expect(noBody.status).to.equal(400);
    // A JSON null body is refused before or by the schema (the body parser's null handling is shared with other routes).
    expect(noBody.body.message).to.match(/id is required|JSON/);
    const noId = await agent.request('POST', '/images', { type: 'kvm' });
    expect(noId.status).to.equal(400);
    expect(noId.body.message).to.match(/id is required/);
    const badId = await agent.request('POST', '/images', { id: '../../etc/passwd', source: `${server.url}/base.qcow2` });
    expect(badId.status).to.equal(400);
    expect(badId.body.message).to.match(/image id/);
    const scheme = await agent.request('POST', '/images', { id: 'f', source: 'file:///etc/passwd' });
    expect(scheme.status).to.equal(400);
    expect(scheme.body.message).to.match(/scheme "file" is not allowed/);
  });

  it('stores an upload streamed from the request body and refuses one with a wrong checksum (422, nothing kept)', async () => {
    const file = path.join(served, 'disk.raw');
    const size = (await stat(file)).size;
    const stored = await upload(`${agent.url}/images/up`, file, size);
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    expect(stored.body).to.include({ id: 'up', size: 8, status: 'complete' });
    expect(await sha256Of(path.join(imagesDir, 'up'))).to.equal(await sha256Of(file));
    const chunked = await upload(`${agent.url}/images/up2?sha256=${await sha256Of(file)}`, file, undefined);
    expect(chunked.status, JSON.stringify(chunked.body)).to.equal(201);
    const wrong = await upload(`${agent.url}/images/up3?sha256=${'1'.repeat(64)}`, file, size);
    expect(wrong.status).to.equal(422);
    expect(wrong.body.message).to.match(/sha256 mismatch/);
    expect((await agent.request('GET', '/images/up3')).status).to.equal(404);
    // Through the contract-checked client too: a tiny body is a raw image, refused here for its checksum.
    const small = await agent.request('PUT', `/images/up4?sha256=${'2'.repeat(64)}`, 'sixteen bytes...');
    expect(small.status, small.text).to.equal(422);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('refuses uploaded and fetched images that name a host file without opening it, the same answer whether it exists', async () => {
    const secret = path.join(work, 'secret');
    const missing = path.join(work, 'nope');
    await writeFile(secret, 'root:$6$hash:19000:0:99999:7:::\n');
    const vmdk = (target: string) => `# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "${target}" 0\n`;
    await writeFile(path.join(served, 'shadow.vmdk'), vmdk(secret));
    await writeFile(path.join(served, 'nope.vmdk'), vmdk(missing));
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', secret, path.join(served, 'shadow.qcow2'), '1M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', missing, path.join(served, 'nope.qcow2'), '1M');
    const watch = await watchOpens([secret]);
    const answers: Record<string, string> = {};
    for (const name of ['shadow.vmdk', 'nope.vmdk', 'shadow.qcow2', 'nope.qcow2']) {
      const file = path.join(served, name);
      const put = await upload(`${agent.url}/images/put-${name}`, file, (await stat(file)).size);
      expect(put.status, JSON.stringify(put.body)).to.equal(422);
      const fetched = await agent.request('POST', '/images?wait=30', { id: `get-${name}`, source: `${server.url}/${name}` });
      expect(fetched.status, fetched.text).to.equal(500);
      // The id differs per request; the reason after it must not.
      answers[`put ${name}`] = put.body.message.replace(`put-${name}`, 'ID');
      answers[`fetch ${name}`] = fetched.body.job.Message.replace(`get-${name}`, 'ID');
    }
    expect(await watch.stop(), 'the named host file was never opened').to.deep.equal([]);
    expect(answers['put shadow.vmdk']).to.match(/format "vmdk" is not accepted/);
    expect(answers['put shadow.qcow2']).to.match(/names a backing file/);
    for (const kind of ['put', 'fetch']) {
      expect(answers[`${kind} nope.vmdk`], `${kind}: missing and existing path answer alike`).to.equal(answers[`${kind} shadow.vmdk`]);
      expect(answers[`${kind} nope.qcow2`]).to.equal(answers[`${kind} shadow.qcow2`]);
    }
    for (const message of Object.values(answers)) expect(message, 'no host path in an answer').to.not.include(work);
    expect(await leftovers()).to.deep.equal([]);
  });

  it('refuses a file: source the host does not serve in the request (400, one message whatever the reason, no job), and takes 255-character ids', async () => {
    const files = await children.inProcess({ config: withImages(simulatorConfig(), { imagesDir: path.join(work, 'files-images'), allowedSchemes: ['file'], fileSourceDirs: [served] }) });
    const jobsBefore = (await files.request('GET', '/jobs')).body.length;
    const messages = new Set<string>();
    for (const file of ['/etc/shadow', '/etc/no-such-file', path.join(served, 'missing.qcow2'), served]) {
      const res = await files.request('POST', '/images', { id: 'f', source: `file://${file}` });
      expect(res.status, res.text).to.equal(400);
      messages.add(res.body.message.replace(`file://${file}`, 'X'));
    }
    expect([...messages], 'the same answer whether the path exists or lies outside').to.have.length(1);
    expect((await files.request('GET', '/jobs')).body.length, 'no job queued').to.equal(jobsBefore);
    const ok = await files.request('POST', '/images?wait=30', { id: 'f', source: `file://${path.join(served, 'disk.raw')}` });
    expect(ok.status, ok.text).to.equal(200);
    const long = `L${'x'.repeat(254)}`;
    const file = path.join(served, 'disk.raw');
    const stored = await upload(`${files.url}/images/${long}`, file, (await stat(file)).size);
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    expect(stored.body.id).to.equal(long);
  });

  it('refuses a create naming a missing image at once with 400, and a delete of an image in use with 409 naming the guest', async () => {
    const missing = await agent.request('POST', '/guests', { memory: 128, cpu: 1, image: '', disks: [{ size: 16, image: '' }, { image: 'nosuch' }] });
    expect(missing.status, missing.text).to.equal(400);
    expect(missing.body.message).to.match(/image "nosuch" is not on this host/);
    const created = await agent.request('POST', '/guests?wait=10', { memory: 128, cpu: 1, disks: [{ image: 'up' }] });
    expect(created.status, created.text).to.equal(200);
    const refused = await agent.request('DELETE', '/images/up');
    expect(refused.status).to.equal(409);
    expect(refused.body.message).to.include(`in use by guest ${created.body.id}`);
    expect((await agent.request('DELETE', `/guests/${created.body.id}?wait=10`)).status).to.equal(200);
    const deleted = await agent.request('DELETE', '/images/up?wait=10');
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await agent.request('GET', '/images/up')).status).to.equal(404);
    expect((await agent.request('DELETE', '/images/up')).status).to.equal(404);
  });

  it('leaves no partial file after a kill -9 mid-fetch; the job ends as interrupted', async () => {
    // The process is the point: a child agent on the same images folder is killed and restarted.
    const config = withImages(simulatorConfig(), { imagesDir });
    const first = await children.spawn({ config });
    const res = await first.request('POST', '/images', { id: 'killed', source: `${server.url}/slow/base.qcow2` });
    const jobId = res.headers.get('x-guest-job-id')!;
    await waitFor(async () => (await first.request('GET', `/jobs/${jobId}`)).body.Status === 'Running' && (await leftovers()).length > 0, 30_000, 'the fetch to be writing');
    await first.kill9();
    const second = await children.spawn({ config, dataDir: first.dataDir });
    expect((await second.request('GET', `/jobs/${jobId}`)).body).to.include({ Status: 'Error', Message: 'interrupted by agent restart' });
    expect(await leftovers()).to.deep.equal([]);
    expect((await second.request('GET', '/images/killed')).status).to.equal(404);
  });
});
