/**
 * Snapshots on the QEMU backend through the real agent (config/qemu.json,
 * HTTP, jobs) with real QEMU under TCG: a snapshot of an off guest and of a
 * running one, data written after it gone after rollback (qemu-io patterns
 * on the disk, and the guest writing its disk), a download that qemu-img
 * check accepts, uploaded as an image and booted as its own guest, and
 * delete.
 */
import { expect } from 'chai';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { GuestShell, waitForConsole } from '../support/backend-testing.js';
import { shippedConfig } from '../support/configs.js';
import { hasPattern, qemuImg, qemuIo } from '../support/image-files.js';
import { FIRST_BOOT_MS, GUEST_ACTION_SECONDS, recordBoot, underLoad } from '../support/load-budget.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';

/** A SnapshotRequest the way Go sends it: every field present, zero values. */
const snapshotRequest = (dest: string, destroyMoreRecent = false) => ({ id: '', dest, recursive: false, destroyMoreRecent });

describe('QEMU snapshots through the agent (real QEMU under TCG)', function () {
  this.timeout(600_000); // bounded by the waits below, which scale with the measured load
  let world: QemuWorld;
  let agent: RunningAgent | undefined;
  let agentConfig: object;

  before(async function () {
    this.timeout(300_000);
    world = await QemuWorld.create();
    const config = shippedConfig('qemu.json');
    for (const entry of config.plugins) {
      if (entry.module === 'qemu') entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir, shutdownTimeoutSeconds: GUEST_ACTION_SECONDS };
      if (entry.module === 'images') entry.options = { ...entry.options, imagesDir: world.imagesDir };
    }
    agentConfig = { ...config, logLevel: 'info' };
    agent = await startAgent({ config: agentConfig, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
  });
  after(async () => {
    await disposeQemuTestAgent(agent);
    await world?.dispose();
  });

  const runDir = (id: string) => path.join(agent!.dataDir, 'plugins', 'qemu', id);
  async function ok(method: string, url: string, body?: unknown, status = 200): Promise<any> {
    const res = await agent!.request(method, url, body);
    expect(res.status, `${method} ${url}: ${res.text}`).to.equal(status);
    return res.body;
  }
  async function create(body: object): Promise<any> {
    return ok('POST', '/guests?wait=60&start=false', { memory: 256, cpu: 1, disks: [{ size: 32 }], ...body });
  }
  async function boot(id: string): Promise<void> {
    const t0 = Date.now();
    await ok('POST', `/guests/${id}/start?wait=60`);
    recordBoot((await waitForConsole(path.join(runDir(id), 'console.log'), INIT_REACHED, FIRST_BOOT_MS)) - t0);
  }
  /** Streams a download to a file; answers the response's Content-Length. */
  async function download(url: string, file: string): Promise<number> {
    const res = await fetch(`${agent!.url}${url}`);
    expect(res.status, `GET ${url}`).to.equal(200);
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(file));
    return Number(res.headers.get('content-length'));
  }

  it('snapshots an off guest, rolls its disk back (later snapshot refused, then destroyed), and deletes the snapshot', async () => {
    const guest = await create({});
    const disk = guest.disks[0].source as string;
    await qemuIo(disk, 'qcow2', 'write -P 0x11 0 1M');
    const [s1] = await ok('POST', `/guests/${guest.id}/snapshots?wait=60`, snapshotRequest('s1'));
    expect(s1.id).to.equal('s1');
    expect(s1.size, 'MiB a copy of it takes: its 1 MiB of data and qcow2 metadata').to.be.at.least(1);
    await qemuIo(disk, 'qcow2', 'write -P 0x22 0 1M');
    await ok('POST', `/guests/${guest.id}/disks/vda/snapshots?wait=60`, snapshotRequest('s2'));
    await qemuIo(disk, 'qcow2', 'write -P 0x33 0 1M');
    expect((await ok('GET', `/guests/${guest.id}/snapshots`)).map((s: { id: string }) => s.id)).to.deep.equal(['s1', 's2']);
    expect((await ok('GET', `/guests/${guest.id}/disks/vda/snapshots/s2`))[0].id).to.equal('s2');

    const refused = await agent!.request('POST', `/guests/${guest.id}/snapshots/s1/rollback?wait=60`, snapshotRequest(''));
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.headers.get('x-guest-job-id'), 'refused before any job').to.equal(null);
    expect(refused.text).to.include('destroyMoreRecent');
    expect(await hasPattern(disk, 'qcow2', 0x33, '0', '1M'), 'a refused rollback changes nothing').to.equal(true);

    await ok('POST', `/guests/${guest.id}/snapshots/s1/rollback?wait=60`, snapshotRequest('', true));
    expect(await hasPattern(disk, 'qcow2', 0x11, '0', '1M'), 'what was written after s1 is gone').to.equal(true);
    expect((await ok('GET', `/guests/${guest.id}/snapshots`)).map((s: { id: string }) => s.id), 's2 destroyed').to.deep.equal(['s1']);
    await ok('DELETE', `/guests/${guest.id}/snapshots/s1?wait=60`);
    expect(await ok('GET', `/guests/${guest.id}/snapshots`)).to.deep.equal([]);
    expect((await agent!.request('GET', `/guests/${guest.id}/snapshots/s1`)).status).to.equal(404);
    await ok('DELETE', `/guests/${guest.id}?wait=60`);
  });

  it('closes and frees the temporary export when the client goes away mid-download, and removes exports a killed agent left', async () => {
    const guest = await create({ disks: [{ size: 128 }] });
    await qemuIo(guest.disks[0].source, 'qcow2', 'write -P 0x5a 0 96M');
    await ok('POST', `/guests/${guest.id}/snapshots?wait=60`, snapshotRequest('big'));
    const exportsHeld = async () => {
      const fds = await readdir(`/proc/${agent!.pid}/fd`);
      const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${agent!.pid}/fd/${fd}`).catch(() => '')));
      return targets.filter((t) => t.includes('.snapshot-export-'));
    };
    const controller = new AbortController();
    const res = await fetch(`${agent!.url}/guests/${guest.id}/snapshots/big/download`, { signal: controller.signal });
    expect(res.status).to.equal(200);
    expect(Number(res.headers.get('content-length'))).to.be.greaterThan(96 * 1024 * 1024);
    const reader = res.body!.getReader();
    expect((await reader.read()).value!.length, 'bytes arrive').to.be.greaterThan(0);
    const held = await exportsHeld();
    expect(held, 'while streaming, the agent holds the export open, already unlinked').to.have.length(1);
    expect(held[0]).to.match(/\(deleted\)$/);
    controller.abort();
    await waitFor(async () => (await exportsHeld()).length === 0, underLoad(10_000), 'the agent to close the export after the client went away');

    // A convert cut off by kill -9 leaves its file; the next agent start removes it.
    const stale = path.join(runDir(guest.id), '.snapshot-export-0123456789ab.qcow2');
    await writeFile(stale, 'half written');
    const dataDir = agent!.dataDir;
    await agent!.stop();
    agent = await startAgent({ config: agentConfig, dataDir, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    expect(existsSync(stale), 'leftover export removed at start').to.equal(false);
    await ok('DELETE', `/guests/${guest.id}?wait=60`);
  });

  it('snapshots a running guest; its download passes qemu-img check and boots as its own guest; rollback once off undoes the guest\'s writes', async () => {
    const guest = await create({ metadata: world.tinyBoot });
    await boot(guest.id);
    const shell = await GuestShell.connect(path.join(runDir(guest.id), 'serial1.sock'));
    const fill = (byte: string) => shell.run(`dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\\000' '\\${byte}' | dd of=/dev/vda bs=64k conv=fsync 2>/dev/null`, underLoad(30_000));
    await fill('101'); // 'A' = 0x41
    const [snap] = await ok('POST', `/guests/${guest.id}/snapshots?wait=120`, snapshotRequest('before'));
    expect(snap.id).to.equal('before');
    await fill('102'); // 'B' = 0x42
    const rollback = await agent!.request('POST', `/guests/${guest.id}/snapshots/before/rollback`, snapshotRequest(''));
    expect(rollback.status, 'no rollback under a running guest').to.equal(409);

    const file = path.join(world.root, 'before.qcow2');
    const length = await download(`/guests/${guest.id}/snapshots/before/download`, file);
    expect((await readdir(runDir(guest.id))).filter((n) => n.startsWith('.snapshot-export-')), 'the temporary export is gone').to.deep.equal([]);
    await qemuImg('check', file);
    expect(length, 'Content-Length').to.be.greaterThan(1024 * 1024);
    expect(await hasPattern(file, 'qcow2', 0x41, '0', '1M'), 'the download is the disk at the snapshot').to.equal(true);

    // The download as an image, and a new guest booted from it.
    const upload = await fetch(`${agent!.url}/images/from-snapshot`, { method: 'PUT', body: createReadStream(file), duplex: 'half' } as unknown as RequestInit);
    expect(upload.status, await upload.text()).to.equal(201);
    const clone = await create({ disks: [{ image: 'from-snapshot' }], metadata: world.tinyBoot });
    await boot(clone.id);
    const cloneShell = await GuestShell.connect(path.join(runDir(clone.id), 'serial1.sock'));
    expect((await cloneShell.run('od -A n -t x1 -N 4 /dev/vda')).replace(/\s+/g, ' ').trim(), 'the clone sees the snapshot data').to.equal('41 41 41 41');
    cloneShell.close();
    await ok('DELETE', `/guests/${clone.id}?wait=60`);

    shell.close();
    await ok('POST', `/guests/${guest.id}/poweroff?wait=60`);
    await ok('POST', `/guests/${guest.id}/snapshots/before/rollback?wait=60`, snapshotRequest(''));
    expect(await hasPattern(guest.disks[0].source, 'qcow2', 0x41, '0', '1M'), 'the guest\'s write after the snapshot is gone').to.equal(true);
    await boot(guest.id);
    const again = await GuestShell.connect(path.join(runDir(guest.id), 'serial1.sock'));
    expect((await again.run('od -A n -t x1 -N 4 /dev/vda')).replace(/\s+/g, ' ').trim(), 'the guest boots on the rolled-back disk').to.equal('41 41 41 41');
    again.close();
    await ok('DELETE', `/guests/${guest.id}/snapshots/before?wait=60`);
    expect(await ok('GET', `/guests/${guest.id}/snapshots`)).to.deep.equal([]);
    await ok('DELETE', `/guests/${guest.id}?wait=60`);
    await waitFor(async () => !existsSync(runDir(guest.id)), underLoad(10_000), 'run dir removed');
    await ok('DELETE', '/images/from-snapshot?wait=30');
  });
});
