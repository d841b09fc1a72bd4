/**
 * Snapshots through libvirt, via the real agent (config/libvirt.json, HTTP,
 * jobs) against a real libvirtd with the tiny guest under TCG: an off guest
 * (libvirt internal snapshots, qcow2 disk snapshots with qemu-img), rollback
 * with and without destroyMoreRecent checked with qemu-io patterns on the
 * volume, a download that qemu-img check accepts and that boots as its own
 * guest (uploaded as an image), and a running guest's checkpoint with
 * memory that a rollback brings back running, without what was written
 * after it.
 */
import { expect } from 'chai';
import { createWriteStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, waitForConsole } from '../support/backend-testing.js';
import { removeDir, startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { hasPattern, qemuImg, qemuIo } from '../support/image-files.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';
import { LibvirtWorld, SYSTEM_URI, virsh } from './world.js';

/** Fills the first MiB of a guest block device with one byte value, from inside the guest. */
async function guestWrite(shell: GuestShell, device: string, byte: number): Promise<void> {
  const octal = byte.toString(8).padStart(3, '0');
  await shell.run(`dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\\000' '\\${octal}' | dd of=/dev/${device} bs=64k conv=fsync 2>/dev/null`, 60_000);
}

describe('libvirt snapshots (real libvirtd, tiny guest under TCG)', function () {
  this.timeout(900_000); // bounded by the waits below, which scale with the measured load
  let world: LibvirtWorld;
  let agent: RunningAgent | undefined;

  before(async function () {
    this.timeout(300_000);
    world = await LibvirtWorld.create();
    agent = await startAgent({ config: { ...world.config(), logLevel: 'info' }, startTimeoutMs: 60000, env: { HYPERKERN_LIBVIRT_URI: '' } });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && agent) console.error(agent.logs.slice(-30).join('\n'));
  });
  after(async function () {
    this.timeout(600_000);
    await agent?.stop();
    if (agent) await Promise.all([removeDir(agent.dataDir), rm(`${agent.dataDir}.config.json`, { force: true })]);
    if (!world) return;
    const left = await world.domains();
    await world.dispose();
    expect(left, 'domains the tests left behind').to.deep.equal([]);
  });

  const guestDir = (id: string) => path.join(agent!.dataDir, 'plugins', 'libvirt', id);
  async function create(body: object = {}): Promise<any> {
    const res = await agent!.request('POST', '/guests?wait=60&start=false', { memory: 128, cpu: 1, disks: [{ size: 32 }], metadata: world.tinyBoot, ...body });
    expect(res.status, res.text).to.equal(200);
    return res.body;
  }
  async function act(id: string, action: string): Promise<any> {
    const res = await agent!.request('POST', `/guests/${id}/${action}?wait=120`);
    expect(res.status, `${action}: ${res.text}`).to.equal(200);
    return res.body;
  }
  /** A snapshot job (POST …/snapshots, DELETE, rollback), waited for; answers the response. */
  async function snapshotJob(method: 'POST' | 'DELETE', url: string, body?: object) {
    const sep = url.includes('?') ? '&' : '?';
    const res = await agent!.request(method, `${url}${sep}wait=600`, body);
    const job = (await agent!.request('GET', `/jobs/${res.headers.get('x-guest-job-id')}`)).body;
    return { status: res.status, body: res.body, job };
  }
  async function names(url: string): Promise<string[]> {
    const res = await agent!.request('GET', url);
    expect(res.status, res.text).to.equal(200);
    return res.body.map((s: any) => s.id);
  }
  async function download(url: string, file: string): Promise<{ status: number; length: number }> {
    const res = await fetch(agent!.url + url);
    expect(res.status, res.status === 200 ? '' : await res.text()).to.equal(200);
    await pipeline(Readable.fromWeb(res.body as any), createWriteStream(file));
    return { status: res.status, length: Number(res.headers.get('content-length')) };
  }
  async function boot(id: string, from = 0): Promise<GuestShell> {
    const t0 = Date.now();
    recordBoot((await waitForConsole(path.join(guestDir(id), 'console.log'), INIT_REACHED, Math.max(underLoad(60000), FIRST_BOOT_MS), from)) - t0);
    return GuestShell.connect(path.join(guestDir(id), 'serial1.sock'));
  }
  async function domainSnapshots(id: string): Promise<string[]> {
    return (await virsh(SYSTEM_URI, 'snapshot-list', world.prefix + id, '--name')).split('\n').map((l) => l.trim()).filter(Boolean);
  }

  it('snapshots an off guest, rolls back (destroyMoreRecent or a 409), keeps disk snapshots apart, and downloads one that boots as its own guest', async () => {
    const guest = await create();
    const id = guest.id;
    const volume = guest.disks[0].source;
    await qemuIo(volume, 'qcow2', 'write -P 0x11 0 1M');
    const s1 = await snapshotJob('POST', `/guests/${id}/snapshots`, { id: '', dest: 's1', recursive: false, destroyMoreRecent: false });
    expect(s1.status, JSON.stringify(s1.body)).to.equal(200);
    expect(s1.job.Status, s1.job.Message).to.equal('Complete');
    expect(s1.body.map((s: any) => s.id)).to.deep.equal(['s1']);
    expect(s1.body[0].size, 'MiB a download of it needs').to.be.at.least(1);
    expect(await domainSnapshots(id), 'a libvirt domain snapshot').to.deep.equal(['s1']);
    await qemuIo(volume, 'qcow2', 'write -P 0x22 0 1M');
    expect((await snapshotJob('POST', `/guests/${id}/snapshots`, { dest: 's2' })).job.Status).to.equal('Complete');
    await qemuIo(volume, 'qcow2', 'write -P 0x33 0 1M');
    // A qcow2 snapshot of the one disk: not libvirt's, not on the guest-wide list.
    expect((await snapshotJob('POST', `/guests/${id}/disks/vda/snapshots`, { dest: 'd1' })).job.Status).to.equal('Complete');
    expect(await names(`/guests/${id}/snapshots`)).to.deep.equal(['s1', 's2']);
    expect(await names(`/guests/${id}/disks/vda/snapshots`), 'a disk shows every snapshot it holds').to.deep.equal(['s1', 's2', 'd1']);
    expect(await domainSnapshots(id)).to.deep.equal(['s1', 's2']);
    const partOfGuest = await snapshotJob('DELETE', `/guests/${id}/disks/vda/snapshots/s1`);
    expect(partOfGuest.job.Status).to.equal('Error');
    expect(partOfGuest.job.Message).to.contain('part of guest').and.contain(`/guests/${id}/snapshots/s1`);
    expect((await agent!.request('POST', `/guests/${id}/snapshots`, { dest: '-x' })).status, 'a name virsh would read as an option').to.equal(400);
    const digits = await agent!.request('POST', `/guests/${id}/snapshots`, { dest: '42' });
    expect(digits.status, 'refused before a job is queued').to.equal(400);
    expect(digits.body.message).to.contain('all digits');
    const taken = await agent!.request('POST', `/guests/${id}/disks/vda/snapshots`, { dest: 's1' });
    expect(taken.status, 'a name the disk already has').to.equal(409);

    // Later snapshots and no destroyMoreRecent: refused before a job is queued, nothing changed.
    const kept = await agent!.request('POST', `/guests/${id}/snapshots/s1/rollback`, { destroyMoreRecent: false });
    expect(kept.status).to.equal(409);
    expect(kept.body.message).to.contain('taken after "s1"').and.contain('s2');
    expect(await hasPattern(volume, 'qcow2', 0x33, '0', '1M'), 'nothing rolled back').to.equal(true);
    expect((await snapshotJob('DELETE', `/guests/${id}/disks/vda/snapshots/d1`)).job.Status).to.equal('Complete');
    const back = await snapshotJob('POST', `/guests/${id}/snapshots/s2/rollback`, { destroyMoreRecent: false });
    expect(back.job.Status, back.job.Message).to.equal('Complete');
    expect(await hasPattern(volume, 'qcow2', 0x22, '0', '1M'), 'data of s2 back').to.equal(true);
    const first = await snapshotJob('POST', `/guests/${id}/snapshots/s1/rollback`, { destroyMoreRecent: true });
    expect(first.job.Status, first.job.Message).to.equal('Complete');
    expect(await hasPattern(volume, 'qcow2', 0x11, '0', '1M'), 'data written after s1 gone').to.equal(true);
    expect(await names(`/guests/${id}/snapshots`), 'destroyMoreRecent deleted s2').to.deep.equal(['s1']);
    expect(await domainSnapshots(id)).to.deep.equal(['s1']);
    expect((await agent!.request('GET', `/guests/${id}`)).body.state, 'a snapshot of an off guest leaves it off').to.equal('off');

    // The download: a self-contained qcow2 of s1, streamed with its size, its temp file gone.
    const copy = path.join(world.root, 'from-s1.qcow2');
    const got = await download(`/guests/${id}/snapshots/s1/download`, copy);
    expect(got.length, 'Content-Length').to.equal((await stat(copy)).size);
    expect((await readdir(path.join(agent!.dataDir, 'plugins', 'libvirt', 'snapshot-exports'))).length, 'export file gone').to.equal(0);
    await qemuImg('check', copy);
    const info = JSON.parse(await qemuImg('info', '--output=json', copy));
    expect(info).to.not.have.property('backing-filename');
    expect(info.snapshots ?? []).to.deep.equal([]);
    expect(await hasPattern(copy, 'qcow2', 0x11, '0', '1M')).to.equal(true);

    // It boots as its own guest: uploaded as an image of the pool, a new guest's disk built on it.
    const imageId = `${world.prefix}from-s1`;
    const uploaded = await new Promise<number>((resolve, reject) => {
      void stat(copy).then(({ size }) => {
        const req = httpRequest(`${agent!.url}/images/${imageId}`, { method: 'PUT', headers: { 'content-length': String(size) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        createReadStream(copy).pipe(req);
      }, reject);
    });
    expect(uploaded).to.equal(201);
    const clone = await create({ disks: [{ image: imageId }] });
    await act(clone.id, 'start');
    const shell = await boot(clone.id);
    const bytes = await shell.run('od -A n -t x1 -N 4 /dev/vda');
    shell.close();
    expect(bytes.replace(/\s+/g, ' ').trim(), 'the clone sees the snapshot\'s data').to.equal('11 11 11 11');

    expect((await snapshotJob('DELETE', `/guests/${id}/snapshots/s1`)).job.Status).to.equal('Complete');
    expect(await names(`/guests/${id}/snapshots`)).to.deep.equal([]);
    expect((await agent!.request('DELETE', `/guests/${clone.id}?wait=60`)).status).to.equal(200);
    expect((await agent!.request('DELETE', `/images/${imageId}?wait=60`)).status).to.equal(200);
    expect((await agent!.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
  });

  it('checkpoints a running guest with its memory; a rollback brings it back running, without what was written after', async () => {
    const guest = await create();
    const id = guest.id;
    await act(id, 'start');
    const shell = await boot(id);
    await guestWrite(shell, 'vda', 0x41);
    const taken = await snapshotJob('POST', `/guests/${id}/snapshots`, { dest: 'live' });
    expect(taken.job.Status, taken.job.Message).to.equal('Complete');
    const xml = await virsh(SYSTEM_URI, 'snapshot-dumpxml', world.prefix + id, 'live');
    expect(xml, 'libvirt took a checkpoint of the running domain').to.contain('<state>running</state>').and.contain("snapshot='internal'");
    const oneDisk = await agent!.request('POST', `/guests/${id}/disks/vda/snapshots`, { dest: 'one-disk' });
    expect(oneDisk.status, 'one disk of a running guest').to.equal(409);
    expect(oneDisk.body.message).to.contain('needs it off');
    await guestWrite(shell, 'vda', 0x42);
    shell.close();
    // Downloaded while the guest runs.
    const copy = path.join(world.root, 'live.qcow2');
    await download(`/guests/${id}/disks/vda/snapshots/live/download`, copy);
    await qemuImg('check', copy);
    expect(await hasPattern(copy, 'qcow2', 0x41, '0', '1M'), 'the download is the disk at the snapshot').to.equal(true);

    const refused = await agent!.request('POST', `/guests/${id}/snapshots/live/rollback`, { destroyMoreRecent: false });
    expect(refused.status, 'no rollback under a running guest').to.equal(409);
    await act(id, 'poweroff');
    expect(await hasPattern(guest.disks[0].source, 'qcow2', 0x42, '0', '1M'), 'the later write is on the disk').to.equal(true);
    const back = await snapshotJob('POST', `/guests/${id}/snapshots/live/rollback`, {});
    expect(back.job.Status, back.job.Message).to.equal('Complete');
    expect((await virsh(SYSTEM_URI, 'domstate', world.prefix + id)).trim(), 'the checkpoint comes back running').to.equal('running');
    await waitFor(async () => (await agent!.request('GET', `/guests/${id}`)).body.state === 'running', underLoad(30000), 'the guest state to follow libvirt');
    // The guest resumed where the snapshot was: its shell answers without a boot.
    const resumed = await GuestShell.connect(path.join(guestDir(id), 'serial1.sock'));
    const bytes = await resumed.run('od -A n -t x1 -N 4 /dev/vda');
    resumed.close();
    expect(bytes.replace(/\s+/g, ' ').trim(), 'data written after the snapshot is gone').to.equal('41 41 41 41');
    await act(id, 'poweroff');
    expect(await hasPattern(guest.disks[0].source, 'qcow2', 0x41, '0', '1M')).to.equal(true);

    expect((await agent!.request('DELETE', `/guests/${id}?wait=60`)).status, 'a guest with snapshots is deleted with them').to.equal(200);
    expect(await world.domains()).to.deep.equal([]);
  });
});
