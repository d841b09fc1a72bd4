/**
 * Container metrics on a real LXC 5 (plugins/lxc/container-metrics.ts),
 * read in the test's own process from the container's cgroup v1 files and
 * its veth's /sys counters: each rises with work done inside the container
 * (a CPU loop, direct I/O with dd, pings), each matches the kernel's file
 * read directly around it, answers read as Go reads a GuestMetricsResponse,
 * the files stay open across reads, and a stopped container is a 409 until
 * it runs again (in a new cgroup of the same name, read afresh).
 */
import { expect } from 'chai';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { STAGE_KINDS, StageRejection, tapName, type Guest, type GuestMetricsResponse } from '../../core/contract/index.js';
import { blkioAccountingLines, parseBlkioReadWrite } from '../../plugins/lxc/cgroup-blkio.js';
import { ContainerMetrics, CONTAINER_DISK, type CgroupController } from '../../plugins/lxc/container-metrics.js';
import { nicConfigLines, planContainerNics } from '../../plugins/lxc/container-nics.js';
import { LxcWorld, run, uniqueName } from './nics-world.js';

const MiB = 1024 * 1024;

describe('container metrics from cgroup v1 and /sys files (real LXC)', function () {
  this.timeout(180_000);
  let world: LxcWorld;
  let metrics: ContainerMetrics;
  let guest: Guest;
  const net = `10.${randomInt(100, 150)}.${randomInt(0, 256)}`;
  const name = uniqueName('hkmet-');
  const id = crypto.randomUUID();
  // LXC 5 names a container's cgroup lxc.payload.NAME at the root of each v1 hierarchy when root starts it.
  const cgroup = `lxc.payload.${name}`;
  const cgroupDir = (controller: CgroupController) => `/sys/fs/cgroup/${controller}/${cgroup}`;

  /** The container's cgroup files read directly, by path. */
  const usageSeconds = () => Number(readFileSync(`${cgroupDir('cpuacct')}/cpuacct.usage`, 'utf8')) / 1e9;
  const blkio = (file: string) => parseBlkioReadWrite(readFileSync(`${cgroupDir('blkio')}/${file}`, 'utf8'));
  const hostEnd = (counter: string) => Number(readFileSync(`/sys/class/net/${tapName(id, 0)}/statistics/${counter}`, 'utf8'));

  /** A metrics stage's answer as the kernel checks it (Go's reading of GuestMetricsResponse). */
  function asGoReadsIt(response: GuestMetricsResponse): GuestMetricsResponse {
    const checked = STAGE_KINDS.metrics.checkResponse(JSON.parse(JSON.stringify(response)));
    if (!checked.ok) expect.fail(checked.problem);
    return checked.value;
  }

  before(async () => {
    world = await LxcWorld.create();
    const bridge = await world.bridge(`${net}.1/24`);
    guest = {
      id,
      type: 'container',
      image: 'busybox',
      nics: [{ name: 'net0', network: bridge, model: 'virtio', mac: '52:54:00:12:34:56', address: `${net}.2`, netmask: '24', gateway: '', device: tapName(id, 0), vlans: [] }],
      disks: [],
      state: 'running',
      memory: 64,
      cpu: 1,
      vnc: 0,
      metadata: {},
    };
    const upper = world.upperOf(name);
    await run('mkdir', ['-p', upper]);
    const accounting = blkioAccountingLines([upper]);
    expect(accounting, 'the test dir is on a disk (its blkio is countable)').to.have.length(2);
    await world.start(name, [...nicConfigLines(planContainerNics(guest)), ...accounting]);
    metrics = new ContainerMetrics((guestId, controller) => (guestId === id ? cgroupDir(controller) : expect.fail(`asked for ${guestId}`)), planContainerNics);
  });

  after(async () => {
    metrics?.close();
    await world?.dispose();
  });

  it('cpu: one entry, the cgroup CPU time in seconds, rising with a CPU loop inside', async () => {
    const before = metrics.cpu(guest);
    expect(before).to.have.length(1);
    await world.attach(name, ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done']);
    const direct = usageSeconds();
    const [after] = metrics.cpu(guest);
    const again = usageSeconds();
    expect(after.cpu_time, 'between two direct reads of cpuacct.usage').to.be.within(direct, again);
    expect(after.cpu_time - before[0].cpu_time, 'the loop ran in the container').to.be.greaterThan(0.05);
    expect(after.vcpu_time).to.equal(after.cpu_time);
    const read = asGoReadsIt({ guest, type: 'cpu', cpu: [after] });
    expect(read.cpu).to.deep.equal([after]);
  });

  it('disk: one rootfs entry, the blkio bytes and requests of direct writes and reads inside', async () => {
    const before = metrics.disk(guest)[CONTAINER_DISK];
    await world.attach(name, ['dd', 'if=/dev/zero', 'of=/tmp/f', 'bs=1M', 'count=4', 'oflag=direct']);
    await world.attach(name, ['dd', 'if=/tmp/f', 'of=/dev/null', 'bs=1M', 'iflag=direct']);
    const direct = blkio('blkio.throttle.io_service_bytes_recursive');
    const after = metrics.disk(guest)[CONTAINER_DISK];
    expect(after.write_bytes - before.write_bytes, 'the 4 MiB written').to.be.at.least(4 * MiB);
    expect(after.read_bytes - before.read_bytes, 'the 4 MiB read back').to.be.at.least(4 * MiB);
    expect(after.write_ops - before.write_ops).to.be.at.least(4);
    expect(after.read_ops - before.read_ops).to.be.at.least(4);
    expect(after.write_bytes).to.be.at.least(direct.write);
    expect(after.read_bytes).to.be.at.least(direct.read);
    expect(after).to.include({ disk: CONTAINER_DISK, read_time: 0, write_time: 0, flush_ops: 0, flush_time: 0 });
    const read = asGoReadsIt({ guest, type: 'disk', disk: { [CONTAINER_DISK]: after } });
    expect(read.disk).to.deep.equal({ [CONTAINER_DISK]: after });
    for (const [field, value] of Object.entries(after)) if (field.endsWith('_ops') || field.endsWith('_bytes')) expect(Number.isInteger(value), `${field} an int64`).to.equal(true);
  });

  it('nic: the veth counters seen from the guest side, rising with pings from inside', async () => {
    const before = metrics.nic(guest).net0;
    await world.attach(name, ['ping', '-c', '5', '-i', '0.2', '-W', '10', `${net}.1`]);
    const hostRx = hostEnd('rx_packets');
    const after = metrics.nic(guest).net0;
    const hostRxAgain = hostEnd('rx_packets');
    if (!('tx_packets' in after) || !('tx_packets' in before)) expect.fail(`counters expected, got ${JSON.stringify(after)}`);
    expect(after.tx_packets - before.tx_packets, 'the 5 echo requests the guest sent').to.be.at.least(5);
    expect(after.rx_packets - before.rx_packets, 'the 5 replies it received').to.be.at.least(5);
    // The host end receives what the guest transmits.
    expect(after.tx_packets).to.be.within(hostRx, hostRxAgain);
    expect(after.tx_bytes).to.equal(hostEnd('rx_bytes'));
    expect(after.rx_bytes).to.equal(hostEnd('tx_bytes'));
    const read = asGoReadsIt({ guest, type: 'nic', nic: { net0: after } });
    expect(read.nic?.net0).to.deep.equal(after);
  });

  it('keeps the files open: a thousand reads open no file', () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    metrics.cpu(guest);
    metrics.disk(guest);
    metrics.nic(guest);
    const open = fds();
    const cgroupFiles = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).includes(`/${cgroup}/`);
      } catch {
        return false;
      }
    });
    expect(cgroupFiles, 'cpuacct.usage and the two blkio files').to.have.length(3);
    for (let i = 0; i < 1000; i++) {
      metrics.cpu(guest);
      metrics.disk(guest);
      metrics.nic(guest);
    }
    expect(fds()).to.equal(open);
  });

  it('answers 409 for a stopped container, and reads the new cgroup once it runs again', async () => {
    const running = metrics.cpu(guest)[0].cpu_time;
    await world.stop(name);
    for (const read of [() => metrics.cpu(guest), () => metrics.disk(guest), () => metrics.nic(guest)]) {
      let refused: unknown;
      try {
        read();
      } catch (error) {
        refused = error;
      }
      expect(StageRejection.is(refused) && refused.status, String(refused)).to.equal(409);
      expect((refused as Error).message).to.match(new RegExp(`container guest ${id} is not running`));
    }
    await world.startAgain(name);
    const [fresh] = metrics.cpu(guest);
    expect(fresh.cpu_time, 'the new cgroup counts from 0').to.be.lessThan(running);
    expect(fresh.cpu_time).to.be.at.most(usageSeconds());
    const nic = metrics.nic(guest).net0;
    expect('tx_packets' in nic && nic.tx_packets, 'the new veth pair counts from 0').to.be.lessThan(10);
  });

  it('closes a forgotten guest files', () => {
    metrics.cpu(guest);
    metrics.forget(guest.id);
    const held = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).includes(`/${cgroup}/`);
      } catch {
        return false;
      }
    });
    expect(held).to.deep.equal([]);
  });
});
