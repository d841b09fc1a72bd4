/**
 * Container images through mistify's image routes, against the real
 * tools: an OCI image built offline from busybox-static (umoci), pushed
 * with skopeo to Debian's docker-registry on loopback, fetched by
 * POST /images {"type": "container"} through the in-process agent (the
 * simulator beside the images plugin), unpacked into a read-only base,
 * listed, refused when in use, deleted.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, symlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, removeDir, waitFor } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig, withImages } from '../support/configs.js';
import { freePort } from '../support/free-port.js';

const run = promisify(execFile);

/** Unmounts every mount under `dir` (deepest first): the read-only bases a failed test left. */
async function unmountUnder(dir: string): Promise<void> {
  const points = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4]).filter((p) => p?.startsWith(dir + '/'));
  for (const point of points.sort().reverse()) await run('umount', [point]).catch(() => undefined);
}

describe('container images (skopeo, umoci, a loopback docker-registry)', function () {
  this.timeout(120_000);
  let work: string;
  let basesDir: string;
  let layouts: string;
  let registry: ChildProcess | undefined;
  let port: number;

  before(async () => {
    work = await makeTempDir('hk-ctimages-');
    basesDir = path.join(work, 'bases');
    layouts = path.join(work, 'layouts');
    // The image, offline: busybox-static as /bin, entrypoint and cmd in its config.
    const rootfs = path.join(work, 'rootfs');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const tool of ['sh', 'sleep', 'ls']) await symlink('busybox', path.join(rootfs, 'bin', tool));
    await mkdir(layouts);
    const image = `${path.join(layouts, 'web')}:1.2`;
    await run('umoci', ['init', '--layout', path.join(layouts, 'web')]);
    await run('umoci', ['new', '--image', image]);
    await run('umoci', ['insert', '--image', image, rootfs, '/']);
    await run('umoci', ['config', '--image', image, '--config.entrypoint', '/bin/sh', '--config.cmd', '-c', '--config.cmd', 'sleep 3600']);
    // The registry: Debian's distribution registry on a free loopback port, storage in the temp dir.
    port = await freePort();
    const config = path.join(work, 'registry.yml');
    await writeFile(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(work, 'registry')}\nhttp:\n  addr: 127.0.0.1:${port}\nlog:\n  level: error\n`);
    registry = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined))?.status === 200, 30_000, 'the registry to answer');
    await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${image}`, `docker://127.0.0.1:${port}/web:1.2`]);
  });

  const agent = suiteAgent(() => {
    const config = withImages(simulatorConfig(), { imagesDir: path.join(work, 'images'), containerImagesDir: basesDir, fileSourceDirs: [layouts], allowedSchemes: ['http', 'https', 'file'] });
    // Container guests on the simulator: enough for the in-use check (the container backend is not built yet).
    config.actions.containerCreate = { async: ['simulator.create'] };
    config.actions.containerDelete = { async: ['simulator.delete'] };
    return { config };
  });

  after(async () => {
    if (registry?.pid && registry.exitCode === null) {
      registry.kill('SIGTERM');
      await new Promise((resolve) => registry!.once('exit', resolve));
    }
    if (work) {
      await unmountUnder(work);
      await removeDir(work);
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(agent.logs.slice(-20).join('\n'));
  });

  const jobEnd = async (jobId: string) =>
    waitFor(async () => {
      const j = await agent.request('GET', `/jobs/${jobId}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 90_000, `job ${jobId} to end`);

  it('fetches an image from a loopback registry over plain HTTP into a read-only base', async () => {
    const res = await agent.request('POST', '/images', { id: 'web', type: 'container', dest: '', source: `docker://127.0.0.1:${port}/web:1.2`, sha256: '' });
    expect(res.status, res.text).to.equal(202);
    expect(res.body).to.include({ id: 'web', status: 'pending' });
    const job = await jobEnd(res.headers.get('x-guest-job-id')!);
    expect(job, JSON.stringify(job)).to.include({ Action: 'containerFetchImage', Status: 'Complete', GuestID: '' });

    const listed = (await agent.request('GET', '/images?type=container')).body;
    expect(listed).to.deep.equal([{ id: 'web', type: 'container', volume: '', snapshot: '', size: listed[0].size, status: 'complete' }]);
    expect(listed[0].size).to.be.within(1, 10); // busybox-static: about 2 MiB
    expect((await agent.request('GET', '/images/web?type=container')).body).to.deep.equal(listed[0]);
    expect((await agent.request('GET', '/images')).body.map((i: { id: string }) => i.id)).not.to.include('web');

    // Unpacked once: the busybox binary and the image's entrypoint, and nobody writes into the base.
    const rootfs = path.join(basesDir, 'web', 'rootfs');
    expect((await stat(path.join(rootfs, 'bin', 'busybox'))).size).to.equal((await stat('/bin/busybox')).size);
    expect(JSON.parse(await readFile(path.join(basesDir, 'web', 'config.json'), 'utf8')).process.args).to.deep.equal(['/bin/sh', '-c', 'sleep 3600']);
    if (process.getuid?.() === 0) {
      const error = await writeFile(path.join(rootfs, 'intruder'), 'x').catch((e: NodeJS.ErrnoException) => e);
      expect(error).to.have.property('code', 'EROFS');
    }
    expect((await readdir(basesDir)).filter((n) => n.startsWith('.'))).to.deep.equal([]);

    // A second fetch of the same id keeps the image.
    const again = await agent.request('POST', '/images', { id: 'web', type: 'container', source: `docker://127.0.0.1:${port}/web:1.2` });
    expect((await jobEnd(again.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
  });

  it('fetches from an oci: layout under fileSourceDirs', async () => {
    const res = await agent.request('POST', '/images?wait=60', { id: 'web-local', type: 'container', source: `oci:${path.join(layouts, 'web')}:1.2` });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ id: 'web-local', type: 'container', status: 'complete' });
    const del = await agent.request('DELETE', '/images/web-local?type=container&wait=60');
    expect(del.status, del.text).to.equal(200);
    expect(await readdir(basesDir)).to.deep.equal(['web']);
  });

  it('refuses bad sources in the request (400), naming what is wrong and no host path', async () => {
    const cases: [string, RegExp][] = [
      ['oci-archive:http://192.0.2.7/web.tar', /plain HTTP from a host that is not on loopback.*insecureRegistries/],
      ['docker://web/app:1.2', /must name its registry host explicitly/],
      ['docker://web:1.2', /names no repository/],
      ['dir:/etc', /must use the docker:\/\/, oci-archive: or oci: transport/],
      ['docker-daemon:web:1.2', /must use the docker:\/\/, oci-archive: or oci: transport/],
      ['containers-storage:web', /must use the docker:\/\/, oci-archive: or oci: transport/],
      ['oci:/etc:x', /not an OCI layout this host serves images from/],
      [`oci:${layouts}/../rootfs`, /not an OCI layout this host serves images from/],
      ['oci-archive:file:///etc/passwd', /not a file this host serves images from/],
      [`docker://127.0.0.1:${port}/Web:1.2`, /lower-case path components/],
      ['', /source is required/],
    ];
    for (const [source, message] of cases) {
      const res = await agent.request('POST', '/images', { id: 'bad', type: 'container', source });
      expect(res.status, `${source}: ${res.text}`).to.equal(400);
      expect(res.body.message, source).to.match(message);
    }
    expect((await agent.request('GET', '/images/bad?type=container')).status).to.equal(404);
  });

  it('a missing image fails its job with the registry\'s reason and leaves nothing', async () => {
    const res = await agent.request('POST', '/images', { id: 'nothere', type: 'container', source: `docker://127.0.0.1:${port}/web:9.9` });
    expect(res.status, res.text).to.equal(202);
    const job = await jobEnd(res.headers.get('x-guest-job-id')!);
    expect(job.Status).to.equal('Error');
    expect(job.Message).to.match(/skopeo failed: .*manifest unknown/);
    expect(job.Message).not.to.include(work);
    expect((await agent.request('GET', '/images/nothere?type=container')).status).to.equal(404);
    expect(await readdir(basesDir)).to.deep.equal(['web']);
  });

  it('refuses to delete an image a container guest uses (409 naming it), then deletes it', async () => {
    const created = await agent.request('POST', '/guests?wait=30', { type: 'container', image: 'web', memory: 64, cpu: 1 });
    expect(created.status, created.text).to.be.oneOf([200, 202]);
    const guestId = created.body.id;
    const refused = await agent.request('DELETE', '/images/web?type=container');
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.body.message).to.include(`in use by guest ${guestId}`);

    expect((await agent.request('DELETE', `/guests/${guestId}?wait=30`)).status).to.be.oneOf([200, 202, 204]);
    await waitFor(async () => (await agent.request('GET', `/guests/${guestId}`)).status === 404, 30_000, 'the guest to go');
    const res = await agent.request('DELETE', '/images/web?type=container');
    expect(res.status, res.text).to.equal(202);
    expect((await jobEnd(res.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
    expect(await readdir(basesDir)).to.deep.equal([]);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.to.include(basesDir);
    expect((await agent.request('GET', '/images?type=container')).body).to.deep.equal([]);
    expect((await agent.request('DELETE', '/images/web?type=container')).status).to.equal(404);
  });
});
