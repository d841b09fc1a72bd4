/**
 * The QEMU plugin driven directly, stage by stage, against real QEMU (TCG)
 * running the tiny Linux guest: lifecycle, metrics, events and reattach.
 * The agent-level tests (agent.test.ts) repeat the essentials over HTTP.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Guest, GuestMetricsResponse, GuestResponse } from '../../core/contract/index.js';
import type { QemuPlugin } from '../../plugins/qemu/plugin.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, kernelShapedGuest, sleep, stageContext, waitForConsole } from '../support/backend-testing.js';
import { QemuWorld } from './world.js';
import { processAlive as alive } from '../support/process-alive.js';
import { FIRST_BOOT_MS, recordBoot, underLoad } from '../support/load-budget.js';

async function action(world: QemuWorld, plugin: QemuPlugin, stage: string, id: string, args: Record<string, unknown> = {}): Promise<Guest> {
  const guest = world.guests.guests.get(id)!;
  const handler = plugin.handlers[stage as 'create'];
  const response = (await handler({ guest: structuredClone(guest), action: stage, args }, stageContext(`qemu.${stage}`, world.log))) as GuestResponse;
  // What the kernel does with a stage's result: persist the returned guest.
  world.guests.put(response.guest);
  return response.guest;
}

async function metrics(world: QemuWorld, plugin: QemuPlugin, type: 'cpu' | 'disk' | 'nic', id: string): Promise<GuestMetricsResponse> {
  const handler = plugin.handlers[`${type}Metrics`];
  return handler({ guest: world.guests.guests.get(id)!, type, args: {} }, stageContext(`qemu.${type}Metrics`, world.log));
}

function pidOf(world: QemuWorld, id: string): number {
  return Number(readFileSync(path.join(world.runDir(id), 'qemu.pid'), 'utf8'));
}

function consoleLength(world: QemuWorld, id: string): number {
  try {
    return readFileSync(path.join(world.runDir(id), 'console.log')).length;
  } catch {
    return 0;
  }
}

describe('QEMU plugin (real QEMU under TCG)', function () {
  this.timeout(600000); // bounded by the waits below, which scale with the measured load
  let world: QemuWorld;

  before(async function () {
    this.timeout(300000); // the first run downloads and builds the tiny guest
    world = await QemuWorld.create({ bridge: true });
  });
  after(async () => {
    await world?.dispose();
  });

  it('runs a guest through create, start, metrics, suspend, resume, reboot, restart, shutdown, start, poweroff and delete', async () => {
    const plugin = await world.plugin();
    const bridge = world.bridge!;
    const guest = kernelShapedGuest({ cpu: 2, nicNetworks: [bridge.name, 'no-such-bridge'], diskSizes: [64], metadata: world.tinyBoot });
    world.guests.put(guest);
    const id = guest.id;

    const created = await action(world, plugin, 'create', id);
    expect(created.state, 'state after create').to.equal('off');
    const disk = created.disks[0];
    expect(disk.source, 'disk source').to.equal(path.join(world.runDir(id), 'vda.qcow2'));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', disk.source], { encoding: 'utf8' }));
    expect(info.format).to.equal('qcow2');
    expect(info['virtual-size'], 'disk size').to.equal(64 * 1024 * 1024);
    const tap = created.nics[0].device;
    expect(tap, 'tap of the bridged NIC').to.equal(guest.nics[0].device);
    expect(readFileSync(`/sys/class/net/${tap}/master/uevent`, 'utf8'), 'tap enslaved to the bridge').to.include(`INTERFACE=${bridge.name}`);
    expect(created.nics[1].device, 'user-mode NIC has no host device').to.equal('');

    const startedAt = Date.now();
    expect((await action(world, plugin, 'start', id)).state).to.equal('running');
    const bootMs = recordBoot((await waitForConsole(path.join(world.runDir(id), 'console.log'), INIT_REACHED, FIRST_BOOT_MS)) - startedAt);
    console.log(`      time from start stage to guest init (TCG): ${bootMs} ms`);
    expect(world.log.lines.some((l) => l.msg?.includes('TCG')), 'log says which accelerator ran').to.equal(true);

    const cpu0 = (await metrics(world, plugin, 'cpu', id)).cpu!;
    const disk0 = (await metrics(world, plugin, 'disk', id)).disk!;
    const nic0 = (await metrics(world, plugin, 'nic', id)).nic!;
    expect(cpu0, 'one cpu entry per vCPU').to.have.length(2);
    expect(Object.keys(disk0)).to.deep.equal(['vda']);
    expect(nic0.net1, 'user-mode NIC').to.deep.equal({ name: 'net1', counters: 'unavailable: user-mode networking has no host device to count' });

    const shell = await GuestShell.connect(path.join(world.runDir(id), 'serial1.sock'));
    try {
      const mac = guest.nics[0].mac;
      const iface = await shell.run(`for i in /sys/class/net/eth*; do [ "$(cat $i/address)" = "${mac}" ] && echo \${i##*/}; done; true`);
      expect(iface, 'guest interface with the bridged NIC MAC').to.match(/^eth\d$/);
      await shell.run(`ip link set ${iface} up && ip addr add ${bridge.guestAddress(2)}/24 dev ${iface}`);
      await shell.run(`ping -c 3 -W 2 ${bridge.hostAddress}`, 30000);
      await shell.run('dd if=/dev/urandom of=/dev/vda bs=64k count=32 conv=fsync 2>/dev/null');
      await shell.run('echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=64k count=32 2>/dev/null');
    } finally {
      shell.close();
    }
    const cpu1 = (await metrics(world, plugin, 'cpu', id)).cpu!;
    const disk1 = (await metrics(world, plugin, 'disk', id)).disk!;
    const nic1 = (await metrics(world, plugin, 'nic', id)).nic!;
    expect(cpu1[0].vcpu_time, 'vCPU time rises').to.be.greaterThan(cpu0[0].vcpu_time);
    expect(cpu1[0].cpu_time, 'process time rises').to.be.greaterThan(cpu0[0].cpu_time);
    expect(cpu1[0].cpu_time, 'process time covers its vCPUs').to.be.at.least(cpu1[0].vcpu_time + cpu1[1].vcpu_time - 0.05);
    expect(disk1.vda.write_bytes - disk0.vda.write_bytes, 'bytes written').to.be.at.least(32 * 65536);
    expect(disk1.vda.read_bytes - disk0.vda.read_bytes, 'bytes read').to.be.at.least(32 * 65536);
    expect(disk1.vda.flush_ops, 'flushes').to.be.greaterThan(disk0.vda.flush_ops);
    expect(disk1.vda.write_time, 'write time in seconds').to.be.greaterThan(0).and.lessThan(60);
    expect(nic1.net0.tx_packets - nic0.net0.tx_packets, 'guest sent the pings').to.be.at.least(3);
    expect(nic1.net0.rx_packets - nic0.net0.rx_packets, 'guest received the replies').to.be.at.least(3);
    expect(nic1.net0.rx_bytes, 'rx bytes').to.be.greaterThan(nic0.net0.rx_bytes);

    expect((await action(world, plugin, 'suspend', id)).state).to.equal('suspended');
    const pausedStatus = await (plugin as unknown as { machines: Map<string, { status(): Promise<string> }> }).machines.get(id)!.status();
    expect(pausedStatus, 'QEMU run state').to.equal('paused');
    expect((await action(world, plugin, 'start', id)).state, 'start resumes').to.equal('running');
    await world.guests.waitForState(id, 'running', 5000);

    let offset = consoleLength(world, id);
    expect((await action(world, plugin, 'reboot', id)).state).to.equal('running');
    await waitForConsole(path.join(world.runDir(id), 'console.log'), INIT_REACHED, underLoad(30000), offset);

    offset = consoleLength(world, id);
    expect((await action(world, plugin, 'restart', id)).state).to.equal('running');
    await waitForConsole(path.join(world.runDir(id), 'console.log'), INIT_REACHED, underLoad(30000), offset);

    const pid = pidOf(world, id);
    expect((await action(world, plugin, 'shutdown', id)).state, 'graceful shutdown').to.equal('shutdown');
    expect(alive(pid), 'QEMU exited').to.equal(false);
    expect(readFileSync(path.join(world.runDir(id), 'console.log'), 'utf8')).to.include('power button pressed');

    expect((await action(world, plugin, 'start', id)).state).to.equal('running');
    await waitForConsole(path.join(world.runDir(id), 'console.log'), INIT_REACHED, underLoad(30000));
    const pid2 = pidOf(world, id);
    expect((await action(world, plugin, 'poweroff', id)).state).to.equal('off');
    expect(alive(pid2), 'QEMU stopped by poweroff').to.equal(false);

    await action(world, plugin, 'delete', id);
    expect(existsSync(disk.source), 'disk file removed').to.equal(false);
    expect(existsSync(world.runDir(id)), 'run dir removed').to.equal(false);
    expect(existsSync(`/sys/class/net/${tap}`), 'tap removed').to.equal(false);
  });

  it('fails a shutdown cleanly when the guest has no OS to press the power button for, and keeps it running', async () => {
    const plugin = await world.plugin();
    const guest = kernelShapedGuest({ diskSizes: [16] });
    world.guests.put(guest);
    await action(world, plugin, 'create', guest.id);
    await action(world, plugin, 'start', guest.id);
    const pid = pidOf(world, guest.id);
    const began = Date.now();
    let error: Error | undefined;
    await action(world, plugin, 'shutdown', guest.id, { timeout: '2' }).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('guest did not power off within 2 s (does it handle ACPI?)');
    expect(Date.now() - began, 'bounded by the timeout').to.be.lessThan(6000);
    expect(alive(pid), 'guest keeps running').to.equal(true);
    expect(world.guests.guests.get(guest.id)!.state).to.equal('running');
    await action(world, plugin, 'poweroff', guest.id);
    await action(world, plugin, 'delete', guest.id);
  });

  it('sees a guest that powers itself off, one that panics and one whose QEMU is killed, without any API call', async () => {
    const plugin = await world.plugin();
    const a = kernelShapedGuest({ diskSizes: [16], metadata: world.tinyBoot });
    const b = kernelShapedGuest({ diskSizes: [16] });
    const c = kernelShapedGuest({ diskSizes: [16], metadata: world.tinyBoot });
    for (const g of [a, b, c]) {
      world.guests.put(g);
      await action(world, plugin, 'create', g.id);
      await action(world, plugin, 'start', g.id);
    }
    await waitForConsole(path.join(world.runDir(a.id), 'console.log'), INIT_REACHED, underLoad(30000));
    const shell = await GuestShell.connect(path.join(world.runDir(a.id), 'serial1.sock'));
    shell.send('poweroff -f');
    shell.close();
    await world.guests.waitForState(a.id, 'shutdown', underLoad(15000));
    expect(world.guests.observed.find((o) => o.id === a.id)?.reason).to.match(/SHUTDOWN \(guest-shutdown\)/);

    process.kill(pidOf(world, b.id), 'SIGKILL');
    await world.guests.waitForState(b.id, 'off', underLoad(15000));
    expect(world.guests.observed.filter((o) => o.id === b.id).at(-1)?.reason).to.match(/without a SHUTDOWN event/);

    await waitForConsole(path.join(world.runDir(c.id), 'console.log'), INIT_REACHED, underLoad(30000));
    const panicking = await GuestShell.connect(path.join(world.runDir(c.id), 'serial1.sock'));
    panicking.send('echo c > /proc/sysrq-trigger');
    panicking.close();
    await world.guests.waitForState(c.id, 'crashed', underLoad(15000));
    expect(world.guests.observed.filter((o) => o.id === c.id).at(-1)?.reason).to.match(/SHUTDOWN \(guest-panic\)/);

    for (const g of [a, b, c]) await action(world, plugin, 'delete', g.id);
  });

  it('leaves guests running when the plugin stops, and a new instance finds them running, suspended or gone', async () => {
    const first = await world.plugin();
    const [running, paused, lost] = [0, 1, 2].map(() => kernelShapedGuest({ diskSizes: [16] }));
    for (const g of [running, paused, lost]) {
      world.guests.put(g);
      await action(world, first, 'create', g.id);
      await action(world, first, 'start', g.id);
    }
    await action(world, first, 'suspend', paused.id);
    const pids = [running, paused, lost].map((g) => pidOf(world, g.id));
    await first.stop();
    await sleep(200);
    expect(pids.map(alive), 'QEMU outlives the plugin').to.deep.equal([true, true, true]);
    expect(world.guests.guests.get(running.id)!.state, 'detach observes nothing').to.equal('running');
    process.kill(pids[2], 'SIGKILL');
    await sleep(200);
    world.guests.guests.get(paused.id)!.state = 'running'; // the registry's view drifted while no agent ran

    const second = await world.plugin();
    expect(world.guests.guests.get(running.id)!.state).to.equal('running');
    expect(world.guests.guests.get(paused.id)!.state, 'paused QEMU is reported suspended').to.equal('suspended');
    expect(world.guests.guests.get(lost.id)!.state, 'gone QEMU is reported off').to.equal('off');
    const cpu = (await metrics(world, second, 'cpu', running.id)).cpu!;
    expect(cpu).to.have.length(1);
    expect((await action(world, second, 'start', paused.id)).state, 'resume after reattach').to.equal('running');
    expect((await action(world, second, 'poweroff', running.id)).state).to.equal('off');
    expect(alive(pids[0])).to.equal(false);
    for (const g of [running, paused, lost]) await action(world, second, 'delete', g.id);
    expect(pids.map(alive)).to.deep.equal([false, false, false]);
  });

  it('gives each guest its own VNC port when VNC is enabled, and QEMU serves RFB there', async () => {
    const plugin = await world.plugin({ vnc: true, vncPortMin: 25900, vncPortMax: 25999 });
    const [a, b] = [kernelShapedGuest({ diskSizes: [8] }), kernelShapedGuest({ diskSizes: [8] })];
    for (const g of [a, b]) {
      world.guests.put(g);
      await action(world, plugin, 'create', g.id);
    }
    const ports = [a, b].map((g) => world.guests.guests.get(g.id)!.vnc);
    expect(ports[0]).to.be.within(25900, 25999);
    expect(ports[1], 'distinct ports').to.not.equal(ports[0]);
    await action(world, plugin, 'start', a.id);
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: ports[0] });
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString());
      });
      socket.once('error', reject);
    });
    expect(greeting).to.match(/^RFB 003\.008/);
    for (const g of [a, b]) await action(world, plugin, 'delete', g.id);
  });

  it('runs QEMU confined: seccomp filter on, and as an unprivileged user when runAs is set', async () => {
    const plugin = await world.plugin({ runAs: 'nobody' });
    const guest = kernelShapedGuest({ diskSizes: [16], metadata: world.tinyBoot });
    world.guests.put(guest);
    await action(world, plugin, 'create', guest.id);
    await action(world, plugin, 'start', guest.id);
    const status = readFileSync(`/proc/${pidOf(world, guest.id)}/status`, 'utf8');
    const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
    expect(status, 'QEMU dropped to nobody').to.match(new RegExp(`^Uid:\\s+${nobody}\\s`, 'm'));
    expect(status, 'seccomp filter mode').to.match(/^Seccomp:\s+2$/m);
    await waitForConsole(path.join(world.runDir(guest.id), 'console.log'), INIT_REACHED, underLoad(30000));
    const shell = await GuestShell.connect(path.join(world.runDir(guest.id), 'serial1.sock'));
    await shell.run('dd if=/dev/zero of=/dev/vda bs=64k count=4 conv=fsync 2>/dev/null');
    shell.close();
    expect((await metrics(world, plugin, 'disk', guest.id)).disk!.vda.write_bytes).to.be.at.least(4 * 65536);
    expect((await action(world, plugin, 'poweroff', guest.id)).state).to.equal('off');
    // The pidfile QEMU (as nobody) could not remove must not pass for a live guest.
    expect((await action(world, plugin, 'start', guest.id)).state, 'starts again over its stale pidfile').to.equal('running');
    await action(world, plugin, 'delete', guest.id);
    expect(existsSync(world.runDir(guest.id))).to.equal(false);
  });
});
