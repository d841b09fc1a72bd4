/**
 * Container snapshots (plugins/lxc/container-snapshots*.ts) on real LXC
 * containers this test starts: a file written inside, a snapshot taken
 * while the container runs (frozen for the copy, thawed after), the file
 * changed and another deleted, the container stopped and rolled back, and
 * after a start the file is back as it was and the deleted one too; the
 * download is a tar holding the file; later snapshots block a rollback
 * unless destroyMoreRecent; a suspended container stays frozen; names and
 * answers never carry a host path.
 */
import { expect } from 'chai';
import { readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { rejection } from '../support/backend-testing.js';
import { ContainerSnapshots, type ContainerLayer } from '../../plugins/lxc/container-snapshots.js';
import { freezerOf } from '../../plugins/lxc/container-snapshots-freezer.js';
import { LxcFixture, run, type TestContainer } from './snapshots-console-fixture.js';

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('container snapshots on LXC (layer copies)', function () {
  this.timeout(120_000);
  let lxc: LxcFixture;
  const snapshots = new ContainerSnapshots({ cp: 'cp', du: 'du', tar: 'tar' });

  before(async () => {
    lxc = await LxcFixture.make('hk-ctsnap-');
  });
  after(async () => {
    await lxc?.cleanup();
  });

  const layerOf = (c: TestContainer): ContainerLayer => ({
    guestId: `guest-${c.name}`,
    upperDir: c.upperDir,
    snapshotsDir: path.join(c.dir, 'snapshots'),
    freezeMarker: path.join(c.dir, 'snapshot-freeze.json'),
    initPid: () => lxc.initPid(c),
  });

  it('takes a running container at one instant, rolls a stopped one back: the changed file and the deleted one are back', async () => {
    const c = await lxc.container();
    const layer = layerOf(c);
    await lxc.start(c);
    await lxc.sh(c, 'echo version-1 > /root/marker && echo keep > /root/other');

    const taken = await snapshots.create(layer, 'before', undefined);
    expect(taken.name).to.equal('before');
    expect(taken.bytes, 'the copy holds what was written').to.be.greaterThan(0);
    expect(await lxc.state(c), 'thawed after the copy').to.equal('RUNNING');
    expect(await (await freezerOf((await lxc.initPid(c))!)).isFrozen()).to.equal(false);

    await lxc.sh(c, 'echo version-2 > /root/marker && rm /root/other && rm /etc/motd && echo new > /root/added');
    expect(await lxc.sh(c, 'cat /root/marker')).to.equal('version-2\n');

    const running = await rejection(snapshots.rollback(layer, 'before', false));
    expect(running.status).to.equal(409);
    expect(running.message).to.match(/is running; stop it before rolling back/);

    await lxc.stop(c);
    expect(await snapshots.rollback(layer, 'before', false)).to.deep.equal([]);
    await lxc.start(c);
    expect(await lxc.sh(c, 'cat /root/marker')).to.equal('version-1\n');
    expect(await lxc.sh(c, 'cat /root/other')).to.equal('keep\n');
    expect(await lxc.sh(c, 'cat /etc/motd'), 'an image file deleted after the snapshot is back').to.equal('from the image\n');
    expect(await lxc.sh(c, 'test -e /root/added && echo there || echo gone')).to.equal('gone\n');
    const listed = await snapshots.list(layer);
    expect(listed.map((s) => s.name)).to.deep.equal(['before']);
    await lxc.stop(c);
  });

  it('downloads a snapshot as a tar holding the layer: the file inside, a deleted image file as a whiteout, no host path', async () => {
    const c = await lxc.container();
    const layer = layerOf(c);
    await lxc.start(c);
    await lxc.sh(c, 'mkdir -p /srv/data && echo in-the-tar > /srv/data/file && rm /etc/motd');
    await snapshots.create(layer, 'tarred');
    await lxc.stop(c);

    const tar = await bytesOf(await snapshots.download(layer, 'tarred'));
    const file = path.join(lxc.work, 'download.tar');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, tar));
    const { stdout: listing } = await run('tar', ['-tvf', file]);
    expect(listing).to.match(/\.\/srv\/data\/file\n/);
    expect(listing, 'overlayfs marks a deleted image file with a 0/0 character device').to.match(/^c.* 0,0 .*\.\/etc\/motd$/m);
    expect(listing).not.to.include(lxc.work);
    const { stdout: content } = await run('tar', ['-xOf', file, './srv/data/file']);
    expect(content).to.equal('in-the-tar\n');
    // The snapshot folder is the copy only: the layer itself is untouched by the download.
    expect(await readFile(path.join(c.upperDir, 'srv/data/file'), 'utf8')).to.equal('in-the-tar\n');
  });

  it('later snapshots block a rollback unless destroyMoreRecent deletes them; delete and unknown names', async () => {
    const c = await lxc.container();
    const layer = layerOf(c);
    await lxc.start(c);
    await lxc.sh(c, 'echo one > /root/n');
    await snapshots.create(layer, 'one');
    await lxc.sh(c, 'echo two > /root/n');
    await snapshots.create(layer, 'two');
    await lxc.sh(c, 'echo three > /root/n');
    await snapshots.create(layer, 'three');
    expect((await snapshots.list(layer)).map((s) => s.name), 'oldest first').to.deep.equal(['one', 'two', 'three']);
    expect((await rejection(snapshots.create(layer, 'two'))).status, 'a taken name').to.equal(409);
    await lxc.stop(c);

    const blocked = await rejection(snapshots.checkRollback(layer, 'one', false));
    expect(blocked.status).to.equal(409);
    expect(blocked.message).to.match(/has later snapshots \(two, three\); roll back with destroyMoreRecent/);
    expect((await rejection(snapshots.rollback(layer, 'one', false))).status, 'the job checks again').to.equal(409);
    expect((await snapshots.list(layer)).length, 'a refused rollback changes nothing').to.equal(3);

    expect(await snapshots.rollback(layer, 'one', true)).to.deep.equal(['two', 'three']);
    expect((await snapshots.list(layer)).map((s) => s.name)).to.deep.equal(['one']);
    expect(await readFile(path.join(c.upperDir, 'root/n'), 'utf8')).to.equal('one\n');

    await snapshots.delete(layer, 'one');
    expect(await snapshots.list(layer)).to.deep.equal([]);
    expect((await rejection(snapshots.delete(layer, 'one'))).status).to.equal(404);
    expect((await rejection(snapshots.download(layer, 'one'))).status).to.equal(404);
    for (const bad of ['../etc', '.hidden', 'a/b', '', 'x'.repeat(81)]) {
      expect((await rejection(snapshots.create(layer, bad))).status, bad).to.equal(400);
    }
  });

  it('a rollback cut between its two renames (no layer) gets the old layer back at recovery; one cut after them loses only the leftover', async () => {
    const c = await lxc.container();
    const layer = layerOf(c);
    await lxc.start(c);
    await lxc.sh(c, 'echo old > /root/state');
    await snapshots.create(layer, 'snap');
    await lxc.sh(c, 'echo current > /root/state');
    await lxc.stop(c);
    // The state rollback() leaves when the agent dies between `rename(layer, .replaced-T)` and `rename(.rollback-T, layer)`.
    const parent = path.dirname(c.upperDir);
    await rename(c.upperDir, path.join(parent, '.replaced-0a0a'));
    await run('cp', ['-a', path.join(layer.snapshotsDir, 'snap', 'layer'), path.join(parent, '.rollback-0a0a')]);
    const recovered = await snapshots.recover(layer);
    expect(recovered).to.deep.equal({ thawed: false, partials: 0, layerRestored: true });
    expect(await readFile(path.join(c.upperDir, 'root/state'), 'utf8'), 'the layer from before the rollback').to.equal('current\n');
    expect((await readdir(parent)).filter((e) => e.startsWith('.')), 'no rollback folder left').to.deep.equal([]);
    await lxc.start(c);
    expect(await lxc.sh(c, 'cat /root/state'), 'the container starts on it').to.equal('current\n');
    await lxc.stop(c);

    // Cut after both renames: the new layer is in place, the old one left beside it goes; a rollback runs as usual after.
    await run('cp', ['-a', c.upperDir, path.join(parent, '.replaced-0b0b')]);
    expect((await snapshots.recover(layer)).layerRestored).to.equal(false);
    expect((await readdir(parent)).filter((e) => e.startsWith('.'))).to.deep.equal([]);
    expect(await snapshots.rollback(layer, 'snap', false)).to.deep.equal([]);
    expect(await readFile(path.join(c.upperDir, 'root/state'), 'utf8')).to.equal('old\n');
  });

  it('a suspended (frozen) container is copied as it is and stays frozen', async () => {
    const c = await lxc.container();
    const layer = layerOf(c);
    await lxc.start(c);
    await lxc.sh(c, 'echo frozen-state > /root/f');
    await run('lxc-freeze', ['-n', c.name, '-P', lxc.lxcPath]);
    await snapshots.create(layer, 'while-frozen');
    expect(await lxc.state(c)).to.equal('FROZEN');
    // No snapshot's freeze to undo: the recovery at an agent start leaves the user's suspend alone.
    expect((await snapshots.recover(layer)).thawed).to.equal(false);
    expect(await lxc.state(c)).to.equal('FROZEN');
    await run('lxc-unfreeze', ['-n', c.name, '-P', lxc.lxcPath]);
    await lxc.stop(c);
    const tar = await bytesOf(await snapshots.download(layer, 'while-frozen'));
    expect(tar.includes(Buffer.from('frozen-state\n'))).to.equal(true);
  });
});
