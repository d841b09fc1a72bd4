/**
 * QEMU disk and guest snapshots (qcow2 internal snapshots) driven through the
 * plugin directly, on real qemu-img and real QEMU under TCG: an off guest
 * (qemu-img), a running one (QMP transaction over both disks), rollback with
 * destroyMoreRecent checked with qemu-io patterns, a download that qemu-img
 * check accepts and that boots as its own guest, and delete.
 */
import { expect } from 'chai';
import { createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Guest, GuestResponse } from '../../core/contract/index.js';
import type { QemuPlugin } from '../../plugins/qemu/plugin.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, kernelShapedGuest, rejection, stageContext, waitForConsole } from '../support/backend-testing.js';
import { hasPattern, qemuImg, qemuIo } from '../support/image-files.js';
import { FIRST_BOOT_MS, recordBoot } from '../support/load-budget.js';
import { QemuWorld } from './world.js';

async function action(world: QemuWorld, plugin: QemuPlugin, stage: 'create' | 'start' | 'poweroff' | 'delete', id: string): Promise<Guest> {
  const guest = world.guests.guests.get(id)!;
  const response = (await plugin.handlers[stage]({ guest: structuredClone(guest), action: stage, args: {} }, stageContext(`qemu.${stage}`, world.log))) as GuestResponse;
  world.guests.put(response.guest);
  return response.guest;
}

/** Fills the first MiB of a guest block device with one byte value, from inside the guest. */
async function guestWrite(shell: GuestShell, device: string, byte: number): Promise<void> {
  const octal = byte.toString(8).padStart(3, '0');
  await shell.run(`dd if=/dev/zero bs=64k count=16 2>/dev/null | tr '\\000' '\\${octal}' | dd of=/dev/${device} bs=64k conv=fsync 2>/dev/null`, 60_000);
}

describe('QEMU snapshots (real qemu-img and QEMU under TCG)', function () {
  this.timeout(600_000);
  let world: QemuWorld;
  let plugin: QemuPlugin;

  before(async function () {
    this.timeout(300_000);
    world = await QemuWorld.create();
    plugin = await world.plugin();
  });
  after(async () => {
    await world?.dispose();
  });

  it('snapshots an off guest with qemu-img, rolls back with destroyMoreRecent, downloads and deletes', async () => {
    const guest = kernelShapedGuest({ diskSizes: [64] });
    world.guests.put(guest);
    const created = await action(world, plugin, 'create', guest.id);
    const disk = created.disks[0]!.source;
    const target = { guest: created };
    await qemuIo(disk, 'qcow2', 'write -P 0x11 0 1M');
    const s1 = await plugin.snapshots.create(target, 's1');
    expect(s1).to.include({ name: 's1', vmState: false });
    expect(s1.disks).to.deep.equal(['vda']);
    expect(s1.sizeBytes, 'a qcow2 of the snapshot holds its 1 MiB of data').to.be.greaterThan(1024 * 1024);
    await qemuIo(disk, 'qcow2', 'write -P 0x22 0 1M');
    await plugin.snapshots.create({ guest: created, disk: 'vda' }, 's2');
    await qemuIo(disk, 'qcow2', 'write -P 0x33 0 1M');
    expect((await plugin.snapshots.list(target)).map((s) => s.name), 'oldest first').to.deep.equal(['s1', 's2']);

    expect((await rejection(plugin.snapshots.create(target, 's1'))).status, 'a name taken').to.equal(409);
    expect((await rejection(plugin.snapshots.create(target, 'no,comma'))).status, 'a bad name').to.equal(400);
    expect((await rejection(plugin.snapshots.create(target, '42'))).message).to.include('all digits');
    expect((await rejection(plugin.snapshots.get(target, 'nope'))).status).to.equal(404);
    expect((await rejection(plugin.snapshots.list({ guest: created, disk: 'vdz' }))).status).to.equal(404);

    const later = await rejection(plugin.snapshots.rollback(target, 's1', { destroyMoreRecent: false }));
    expect(later.status).to.equal(409);
    expect(later.message).to.include('later snapshots (s2)');
    expect(await hasPattern(disk, 'qcow2', 0x33, '0', '1M'), 'a refused rollback changes nothing').to.equal(true);
    // Rolling back to s2 keeps s1 (older) and loses the 0x33 write.
    expect(await plugin.snapshots.rollback(target, 's2', { destroyMoreRecent: false })).to.deep.equal([]);
    expect(await hasPattern(disk, 'qcow2', 0x22, '0', '1M'), 'data of s2 back').to.equal(true);
    expect(await plugin.snapshots.rollback(target, 's1', { destroyMoreRecent: true }), 'names what went').to.deep.equal(['s2']);
    expect(await hasPattern(disk, 'qcow2', 0x11, '0', '1M'), 'data written after s1 gone').to.equal(true);
    expect((await plugin.snapshots.list(target)).map((s) => s.name)).to.deep.equal(['s1']);

    const download = await plugin.snapshots.download(target, 's1', world.runDir(guest.id));
    const copy = path.join(world.root, 'off-s1.qcow2');
    await pipeline(download.stream, createWriteStream(copy));
    expect((await readdir(world.runDir(guest.id))).filter((n) => n.startsWith('.snapshot-export-')), 'temp file gone').to.deep.equal([]);
    await qemuImg('check', copy);
    const info = JSON.parse(await qemuImg('info', '--output=json', copy));
    expect(info).to.not.have.property('backing-filename');
    expect(info.snapshots ?? [], 'a download is the snapshot, not the snapshot table').to.deep.equal([]);
    expect(await hasPattern(copy, 'qcow2', 0x11, '0', '1M')).to.equal(true);

    await plugin.snapshots.delete(target, 's1');
    expect(await plugin.snapshots.list(target)).to.deep.equal([]);
    await action(world, plugin, 'delete', guest.id);
  });

  it('snapshots both disks of a running guest at once, refuses a running rollback, rolls back once off, and the download boots as its own guest', async () => {
    const guest = kernelShapedGuest({ diskSizes: [32, 32], metadata: world.tinyBoot });
    world.guests.put(guest);
    await action(world, plugin, 'create', guest.id);
    const t0 = Date.now();
    const running = await action(world, plugin, 'start', guest.id);
    recordBoot((await waitForConsole(path.join(world.runDir(guest.id), 'console.log'), INIT_REACHED, FIRST_BOOT_MS)) - t0);
    const shell = await GuestShell.connect(path.join(world.runDir(guest.id), 'serial1.sock'));
    await guestWrite(shell, 'vda', 0x41);
    await guestWrite(shell, 'vdb', 0x61);
    const before = await plugin.snapshots.create({ guest: running }, 'before');
    expect(before.disks, 'guest-wide: every disk').to.deep.equal(['vda', 'vdb']);
    await guestWrite(shell, 'vda', 0x42);
    await guestWrite(shell, 'vdb', 0x62);
    await plugin.snapshots.create({ guest: running, disk: 'vdb' }, 'vdb-only');
    expect((await plugin.snapshots.list({ guest: running })).map((s) => s.name), 'a one-disk snapshot is not a guest snapshot').to.deep.equal(['before']);
    expect((await plugin.snapshots.list({ guest: running, disk: 'vdb' })).map((s) => s.name)).to.deep.equal(['before', 'vdb-only']);
    expect((await rejection(plugin.snapshots.download({ guest: running }, 'before', world.runDir(guest.id)))).message).to.include('has 2 disks');

    // Downloaded while the guest runs and writes.
    const download = await plugin.snapshots.download({ guest: running, disk: 'vda' }, 'before', world.runDir(guest.id));
    const copy = path.join(world.imagesDir, 'from-snapshot.qcow2');
    await pipeline(download.stream, createWriteStream(copy));
    await qemuImg('check', copy);
    expect(await hasPattern(copy, 'qcow2', 0x41, '0', '1M'), 'the download holds the disk as it was at the snapshot').to.equal(true);

    const refused = await rejection(plugin.snapshots.rollback({ guest: running }, 'before', { destroyMoreRecent: false }));
    expect(refused.status).to.equal(409);
    expect(refused.message).to.include('power it off');
    await plugin.snapshots.delete({ guest: running, disk: 'vdb' }, 'vdb-only');
    shell.close();
    const off = await action(world, plugin, 'poweroff', guest.id);
    expect((await plugin.snapshots.list({ guest: off, disk: 'vdb' })).map((s) => s.name), 'deleted live: gone from the file').to.deep.equal(['before']);
    await plugin.snapshots.rollback({ guest: off }, 'before', { destroyMoreRecent: false });
    expect(await hasPattern(off.disks[0]!.source, 'qcow2', 0x41, '0', '1M'), 'vda back to before').to.equal(true);
    expect(await hasPattern(off.disks[1]!.source, 'qcow2', 0x61, '0', '1M'), 'vdb back to before').to.equal(true);

    // The download, as the image of a new guest, boots and shows the snapshot's data.
    const clone = kernelShapedGuest({ diskSizes: [0], metadata: world.tinyBoot });
    clone.disks[0]!.image = 'from-snapshot';
    world.guests.put(clone);
    await action(world, plugin, 'create', clone.id);
    const t1 = Date.now();
    await action(world, plugin, 'start', clone.id);
    recordBoot((await waitForConsole(path.join(world.runDir(clone.id), 'console.log'), INIT_REACHED, FIRST_BOOT_MS)) - t1);
    const cloneShell = await GuestShell.connect(path.join(world.runDir(clone.id), 'serial1.sock'));
    const bytes = await cloneShell.run('od -A n -t x1 -N 4 /dev/vda');
    cloneShell.close();
    expect(bytes.replace(/\s+/g, ' ').trim()).to.equal('41 41 41 41');
    await action(world, plugin, 'delete', clone.id);
    await action(world, plugin, 'delete', guest.id);
  });
});
