/**
 * The image store against the real things: a loopback HTTP server, qemu-img,
 * a real file system and a tiny tmpfs that fills up.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImageStore, type ImageStoreOptions, type Progress } from '../../plugins/images/image-store.js';
import { startImageServer, type ImageServer } from '../support/image-server.js';
import { makeOverlay, makeQcow2, makeRaw, sha256Of } from '../support/image-files.js';
import { makeTempDir, removeDir } from '../support/agent.js';

const exec = promisify(execFile);

describe('image store', function () {
  this.timeout(120_000);
  let work: string;
  let served: string;
  let server: ImageServer;

  before(async () => {
    work = await makeTempDir('hk-images-');
    served = path.join(work, 'served');
    await mkdir(served);
    await makeQcow2(served, 'base.qcow2', 64, 4);
    await makeRaw(served, 'disk.raw', 8);
    await makeOverlay(served, 'overlay.qcow2', path.join(served, 'base.qcow2'));
    await writeFile(path.join(served, 'notes.vmdk'), 'KDMV'.padEnd(4096, '\0'));
    server = await startImageServer(served);
  });

  after(async () => {
    await server?.close();
    await removeDir(work);
  });

  let dirCount = 0;
  async function makeStore(overrides: Partial<ImageStoreOptions> = {}): Promise<ImageStore> {
    const dir = overrides.dir ?? path.join(work, `store-${++dirCount}`);
    const store = new ImageStore({
      dir,
      qemuImg: 'qemu-img',
      type: 'kvm',
      maxBytes: 1024 * 1024 * 1024,
      imageServer: '',
      policy: { allowedSchemes: ['http', 'https', 'file'], fileSourceDirs: [served], stallTimeoutMs: 10_000 },
      ...overrides,
    });
    await store.open();
    return store;
  }

  async function fetchInto(store: ImageStore, id: string, source: string, extra: { sha256?: string; signal?: AbortSignal; onProgress?: (p: Progress) => void } = {}) {
    const release = store.claim(id);
    try {
      return await store.fetch(store.planFetch({ id, source, sha256: extra.sha256 }), { signal: extra.signal ?? new AbortController().signal, sha256: extra.sha256, onProgress: extra.onProgress });
    } finally {
      release();
    }
  }

  async function filesIn(store: ImageStore): Promise<string[]> {
    return readdir(path.dirname(store.fileOf('x')));
  }

  it('fetches a qcow2 over http, detects its format and stores it under its id', async () => {
    const store = await makeStore();
    const progress: Progress[] = [];
    const entry = await fetchInto(store, 'debian', `${server.url}/base.qcow2`, { onProgress: (p) => progress.push(p) });
    expect(entry).to.include({ id: 'debian', type: 'kvm', size: 64, status: 'complete', format: 'qcow2', volume: 'debian' });
    expect(await sha256Of(store.fileOf('debian'))).to.equal(await sha256Of(path.join(served, 'base.qcow2')));
    expect(await filesIn(store)).to.deep.equal(['debian']);
    const total = (await stat(path.join(served, 'base.qcow2'))).size;
    expect(progress.at(-1), 'the last progress report is the whole file').to.deep.equal({ done: total, total });
    expect(await store.list()).to.have.length(1);
    expect(await store.list('container')).to.deep.equal([]);
    expect(await store.get('debian')).to.include({ format: 'qcow2', size: 64 });
  });

  it('accepts raw images and a source without Content-Length', async () => {
    const store = await makeStore();
    expect(await fetchInto(store, 'r1', `${server.url}/chunked/disk.raw`)).to.include({ format: 'raw', size: 8 });
  });

  it('verifies a sha256 and keeps nothing on a mismatch', async () => {
    const store = await makeStore();
    const right = await sha256Of(path.join(served, 'base.qcow2'));
    expect(await fetchInto(store, 'good', `${server.url}/base.qcow2`, { sha256: right.toUpperCase() })).to.include({ id: 'good' });
    const wrong = 'ab'.repeat(32);
    const error = await fetchInto(store, 'bad', `${server.url}/base.qcow2`, { sha256: wrong }).catch((e: Error) => e);
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.match(/sha256 mismatch: expected abab.*gave [0-9a-f]{64}/);
    expect(await filesIn(store)).to.deep.equal(['good']);
  });

  it('keeps nothing when the server dies mid-transfer, and says so', async () => {
    const store = await makeStore();
    const error = (await fetchInto(store, 'cut', `${server.url}/die/base.qcow2`).catch((e: Error) => e)) as Error;
    expect(error.message).to.match(/fetch of image cut failed: .*(closed the connection|ended after)/);
    expect(await filesIn(store)).to.deep.equal([]);
    expect(store.busy('cut'), 'the id is free again').to.equal(false);
  });

  it('refuses a qcow2 with a backing file and formats other than raw and qcow2', async () => {
    const store = await makeStore();
    const backing = (await fetchInto(store, 'ov', `${server.url}/overlay.qcow2`).catch((e: Error) => e)) as Error;
    expect(backing.message).to.match(/backing file/);
    const vmdk = (await fetchInto(store, 'vm', `${server.url}/notes.vmdk`).catch((e: Error) => e)) as Error;
    expect(vmdk.message).to.match(/format "vmdk" is not accepted|qemu-img cannot read/);
    expect(vmdk.message, 'no host path in the message').not.to.include(work);
    expect(await filesIn(store)).to.deep.equal([]);
  });

  it('enforces the size limit before and during the transfer', async () => {
    const store = await makeStore({ maxBytes: 1024 * 1024 });
    const announced = (await fetchInto(store, 'big', `${server.url}/base.qcow2`).catch((e: Error) => e)) as Error;
    expect(announced.message).to.match(/over the limit of 1 MiB \(the images plugin.s maxImageSizeMiB option\)/);
    const streamed = (await fetchInto(store, 'big', `${server.url}/chunked/base.qcow2`).catch((e: Error) => e)) as Error;
    expect(streamed.message).to.match(/larger than the limit of 1 MiB/);
    expect(await filesIn(store)).to.deep.equal([]);
  });

  it('refuses schemes and file sources the policy does not allow', async () => {
    const store = await makeStore({ policy: { allowedSchemes: ['https'], fileSourceDirs: [], stallTimeoutMs: 1000 } });
    expect(() => store.planFetch({ id: 'a', source: `${server.url}/base.qcow2` })).to.throw(/scheme "http" is not allowed.*allowedSchemes/);
    expect(() => store.planFetch({ id: 'a', source: 'not a url' })).to.throw(/is not a URL/);
    expect(() => store.planFetch({ id: '../etc', source: 'https://x/y' })).to.throw(/image id/);
    expect(() => store.planFetch({ id: 'a', source: '' })).to.throw(/imageServer/);
    expect(() => store.planFetch({ id: 'a', type: 'container', source: 'https://x/y' })).to.throw(/type "container"/);
    expect(() => store.planFetch({ id: 'a', source: 'https://x/y', sha256: 'xyz' })).to.throw(/64 hex digits/);
    const files = await makeStore({ policy: { allowedSchemes: ['file'], fileSourceDirs: [served], stallTimeoutMs: 1000 } });
    const outside = (await fetchInto(files, 'pw', 'file:///etc/passwd').catch((e: Error) => e)) as Error;
    expect(outside.message).to.match(/is not a file this host serves images from.*fileSourceDirs/);
    expect(await fetchInto(files, 'local', `file://${path.join(served, 'base.qcow2')}`)).to.include({ format: 'qcow2' });
    // In the request (the sync stage), one message whatever the reason: missing, outside, a link leading out, not a file.
    await symlink('/etc/passwd', path.join(served, 'link-out'));
    const reasons = ['/etc/passwd', '/etc/no-such-file', path.join(served, 'missing.qcow2'), path.join(served, 'link-out'), served, `${served}/../served/../../etc/passwd`];
    const messages = new Set<string>();
    for (const file of reasons) {
      const error = (await files.checkFetch({ id: 'a', source: `file://${file}` }).catch((e: Error) => e)) as Error & { status?: number };
      expect(error.status, file).to.equal(400);
      messages.add(error.message.replace(/source \S+ is/, 'source X is'));
    }
    expect([...messages], 'the same answer for every reason').to.have.length(1);
    expect((await files.checkFetch({ id: 'a', source: `file://${path.join(served, 'base.qcow2')}` })).url.protocol).to.equal('file:');
  });

  it('fetches an empty source from the configured image server as base URL + id', async () => {
    const store = await makeStore({ imageServer: `${server.url}/` });
    const before = server.requests.length;
    expect(await fetchInto(store, 'base.qcow2', '')).to.include({ format: 'qcow2' });
    expect(server.requests.slice(before)).to.deep.equal(['/base.qcow2']);
  });

  it('lets one transfer of an id run at a time and shows it as pending', async () => {
    const store = await makeStore();
    const release = store.claim('one');
    expect(() => store.claim('one')).to.throw(/already being fetched or uploaded/).with.property('status', 409);
    expect(await store.get('one')).to.include({ status: 'pending' });
    release();
    expect(() => store.claim('one')()).not.to.throw();
  });

  it('stops a cancelled fetch and keeps nothing', async () => {
    const store = await makeStore();
    const controller = new AbortController();
    let seen = 0;
    const fetching = fetchInto(store, 'slow', `${server.url}/slow/base.qcow2`, {
      signal: controller.signal,
      onProgress: (p) => {
        seen = p.done;
        if (p.done > 0) controller.abort(new Error('job cancelled'));
      },
    });
    const error = (await fetching.catch((e: Error) => e)) as Error;
    expect(seen).to.be.greaterThan(0);
    expect(error.message).to.match(/cancelled \(job cancelled\); nothing was kept/);
    expect(await filesIn(store)).to.deep.equal([]);
  });

  it('stores an upload streamed from a file', async () => {
    const store = await makeStore();
    const source = path.join(served, 'base.qcow2');
    const release = store.claim('up');
    const entry = await store.upload('up', createReadStream(source), (await stat(source)).size, { signal: new AbortController().signal });
    release();
    expect(entry).to.include({ id: 'up', format: 'qcow2' });
    expect(await sha256Of(store.fileOf('up'))).to.equal(await sha256Of(source));
  });

  it('stores an image whose id has the longest length the rule allows (255), its temporary file name within the limit', async () => {
    const store = await makeStore();
    const id = `a${'b'.repeat(254)}`;
    const source = path.join(served, 'disk.raw');
    const release = store.claim(id);
    try {
      expect(await store.upload(id, createReadStream(source), (await stat(source)).size, { signal: new AbortController().signal })).to.include({ id, format: 'raw' });
    } finally {
      release();
    }
    expect(await filesIn(store)).to.deep.equal([id]);
  });

  it('removes temporary files left by a crash when it opens', async () => {
    const store = await makeStore();
    const dir = path.dirname(store.fileOf('x'));
    await writeFile(path.join(dir, '.lost.partial-abc'), 'x');
    expect((await store.open()).removed).to.equal(1);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  describe('on a full file system', function () {
    let mountPoint: string;
    before(async function () {
      if (process.getuid?.() !== 0) return this.skip(); // mounting a tmpfs needs root
      mountPoint = path.join(work, 'tiny');
      await mkdir(mountPoint);
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
    });
    after(async () => {
      if (mountPoint) await exec('umount', [mountPoint]).catch(() => exec('umount', ['-l', mountPoint]));
    });

    it('fails a fetch naming ENOSPC and leaves nothing behind', async () => {
      const store = await makeStore({ dir: mountPoint });
      // No Content-Length: the free-space check cannot know, so the disk really fills up.
      const error = (await fetchInto(store, 'huge', `${server.url}/chunked/disk.raw`).catch((e: Error) => e)) as Error;
      expect(error.message).to.match(/file system is full \(ENOSPC\); nothing was kept/);
      expect(await readdir(mountPoint)).to.deep.equal([]);
    });

    it('refuses up front when the announced size does not fit', async () => {
      const store = await makeStore({ dir: mountPoint });
      const error = (await fetchInto(store, 'huge', `${server.url}/disk.raw`).catch((e: Error) => e)) as Error;
      expect(error.message).to.match(/has \d+ bytes free, the image needs 8388608/);
      expect(await readdir(mountPoint)).to.deep.equal([]);
    });
  });
});
