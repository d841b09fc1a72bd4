/**
 * A container guest's NICs and metrics through a real agent process on real
 * LXC 5 (issue 23 items 4 and 5): an image built offline from
 * busybox-static, fetched from Debian's docker-registry on loopback, a
 * guest with `type: "container"` and a NIC on a bridge this test makes,
 * created as a Go client sends it (every field, nulls included). Inside,
 * the NIC's address, MAC and gateway (busybox `ip`, through lxc-attach); on
 * the host, the veth's host end on the bridge; GET …/metrics/{cpu,nic,disk}
 * rising with work done inside and matching the kernel's files, the same
 * numbers on /metrics; a missing bridge and a bad address refused with 400
 * in the request, nothing made; delete leaves no veth behind.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { existsSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startAgent, waitFor, type RunningAgent } from '../support/agent.js';
import { containerConfig } from '../support/configs.js';
import { containerNameOf, makeContainerTestDirs, removeContainerTest, type ContainerTestDirs } from '../support/lxc-containers.js';
import { buildBusyboxImage, startRegistry, type LoopbackRegistry } from '../support/oci-registry.js';
import { parseBlkioReadWrite } from '../../plugins/lxc/cgroup-blkio.js';
import { uniqueName } from './nics-world.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** The value of one Prometheus series (labels in any order), or undefined. */
function sample(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const body = line.slice(metric.length + 1, line.lastIndexOf('}'));
    const found = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('container NICs and metrics through the agent (real LXC, a loopback registry)', function () {
  this.timeout(180_000);
  let dirs: ContainerTestDirs | undefined;
  let lxcPath: string;
  let registry: LoopbackRegistry | undefined;
  let agent: RunningAgent | undefined;
  let bridge = '';
  let guestId = '';
  let device = '';
  const net = `10.${randomInt(100, 200)}.${randomInt(0, 256)}`;
  const mac = `52:54:00:${randomInt(16, 256).toString(16)}:00:07`;

  const api = () => agent!;
  const name = () => containerNameOf(guestId);
  const attach = async (...argv: string[]) => (await run('lxc-attach', ['-n', name(), '-P', lxcPath, '--', '/bin/busybox', ...argv], { timeout: 60_000 })).stdout;
  const cgroupFile = (controller: string, file: string) => readFile(`/sys/fs/cgroup/${controller}/lxc.payload.${name()}/${file}`, 'utf8');
  const hostEnd = async (counter: string) => Number(await readFile(`/sys/class/net/${device}/statistics/${counter}`, 'utf8'));
  const metrics = async (type: string) => {
    const res = await api().request('GET', `/guests/${guestId}/metrics/${type}`);
    expect(res.status, res.text).to.equal(200);
    return res.body;
  };
  const jobEnd = (jobId: string) =>
    waitFor(async () => {
      const j = await api().request('GET', `/jobs/${jobId}`);
      return j.body.Status === 'Complete' || j.body.Status === 'Error' ? j.body : undefined;
    }, 60_000, `job ${jobId} to end`);

  before(async () => {
    dirs = await makeContainerTestDirs('hk-ctmet-');
    const { work, dataDir } = dirs;
    lxcPath = dirs.lxcPath;
    const image = await buildBusyboxImage(work, dirs.layouts, 'net', '1.0', { entrypoint: ['/bin/sh', '-c'], cmd: ['trap "exit 0" TERM; while true; do sleep 0.2; done'], stopSignal: 'SIGTERM' });
    registry = await startRegistry(work);
    await registry.push(image, 'net');
    bridge = uniqueName('hkt');
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${net}.1/24`, 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    // The container plans alone: /metrics sweeps container guests with no VM stage configured.
    agent = await startAgent({ config: containerConfig(work), dataDir });
    const fetched = await api().request('POST', '/images?wait=60', { id: 'net', type: 'container', source: `docker://127.0.0.1:${registry.port}/net:1.0` });
    expect(fetched.status, fetched.text).to.equal(200);
  });

  after(async () => {
    await agent?.stop().catch(() => undefined);
    if (bridge && existsSync(`/sys/class/net/${bridge}`)) await run('ip', ['link', 'del', bridge]);
    await removeContainerTest(dirs, { registry });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(agent?.logs.filter((l) => !l.includes('"msg":"request"')).slice(-30).join('\n'));
  });

  it('refuses in the request, with 400 and nothing made, a NIC on a bridge the host lacks and a bad address', async () => {
    const missing = uniqueName('hkno');
    const cases: Array<[object, RegExp]> = [
      [{ network: missing }, new RegExp(`net0: network "${missing}" is not a bridge on this host`)],
      [{ network: bridge, address: `${net}.9`, netmask: '255.0.255.0' }, /netmask 255.0.255.0 is not contiguous/],
      [{ network: bridge, address: `${net}.9`, netmask: '24', gateway: '10.255.255.1' }, /gateway 10.255.255.1 is not on the NIC's subnet/],
    ];
    for (const [nic, message] of cases) {
      const res = await api().request('POST', '/guests', { type: 'container', image: 'net', memory: 64, cpu: 1, nics: [nic], disks: null, metadata: null });
      expect(res.status, res.text).to.equal(400);
      expect(res.body.message).to.match(message);
    }
    const made = await readdir(lxcPath).catch(() => [] as string[]);
    expect(made, 'no container folder').to.deep.equal([]);
  });

  it('creates a container guest with its NIC: address, MAC and gateway inside, the host end on the bridge', async () => {
    const nic = { name: '', network: bridge, model: '', mac, address: `${net}.2`, netmask: '255.255.255.0', gateway: `${net}.1`, device: '', vlans: null };
    const res = await api().request('POST', '/guests', { id: '', type: 'container', image: 'net', nics: [nic], disks: null, state: '', memory: 64, cpu: 1, vnc: 0, metadata: null });
    expect(res.status, res.text).to.equal(202);
    guestId = res.body.id;
    device = res.body.nics[0].device;
    const job = await jobEnd(res.headers.get('x-guest-job-id')!);
    expect(job.Status, JSON.stringify(job)).to.equal('Complete');
    expect((await api().request('GET', `/guests/${guestId}`)).body.state).to.equal('running');

    const addr = await attach('ip', 'addr', 'show', 'eth0');
    expect(addr).to.include(`link/ether ${mac}`).and.include(`inet ${net}.2/24 brd ${net}.255`);
    expect(await attach('ip', 'route')).to.match(new RegExp(`^default via ${net.replaceAll('.', '\\.')}\\.1 dev eth0`, 'm'));
    expect(path.basename(readlinkSync(`/sys/class/net/${device}/master`))).to.equal(bridge);
    await run('busybox', ['ping', '-c', '1', '-W', '10', `${net}.2`]);
  });

  it('cpu: one entry rising with a CPU loop inside, between two reads of cpuacct.usage', async () => {
    const [before] = await metrics('cpu');
    await attach('sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done');
    const direct = Number(await cgroupFile('cpuacct', 'cpuacct.usage')) / 1e9;
    const answer = await metrics('cpu');
    const again = Number(await cgroupFile('cpuacct', 'cpuacct.usage')) / 1e9;
    expect(answer).to.have.length(1);
    expect(Object.keys(answer[0]).sort()).to.deep.equal(['cpu_time', 'vcpu_time']);
    expect(answer[0].cpu_time).to.be.within(direct, again);
    expect(answer[0].cpu_time - before.cpu_time).to.be.greaterThan(0.05);
  });

  it('nic: the veth counters from the guest side, rising with pings from the host', async () => {
    const before = (await metrics('nic')).net0;
    await run('busybox', ['ping', '-c', '5', '-i', '0.2', '-W', '10', `${net}.2`]);
    const answer = await metrics('nic');
    const entry = answer.net0;
    expect(entry, JSON.stringify(answer)).to.include.keys('rx_bytes', 'rx_packets', 'rx_errors', 'rx_drops', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_drops');
    expect(entry.rx_packets - before.rx_packets, 'the 5 echo requests it received').to.be.at.least(5);
    expect(entry.tx_packets - before.tx_packets, 'the 5 replies it sent').to.be.at.least(5);
    // The host end received what the guest sent (nothing else talks on this bridge now).
    expect(entry.tx_bytes).to.equal(await hostEnd('rx_bytes'));
    expect(entry.rx_bytes).to.equal(await hostEnd('tx_bytes'));
  });

  it('disk: the rootfs entry rising with direct writes and reads inside, as the blkio files count them', async () => {
    const before = (await metrics('disk')).rootfs;
    await attach('dd', 'if=/dev/zero', 'of=/ddtest', 'bs=1M', 'count=4', 'oflag=direct');
    await attach('dd', 'if=/ddtest', 'of=/dev/null', 'bs=1M', 'iflag=direct');
    const answer = (await metrics('disk')).rootfs;
    const direct = parseBlkioReadWrite(await cgroupFile('blkio', 'blkio.throttle.io_service_bytes_recursive'));
    expect(answer.write_bytes - before.write_bytes).to.be.at.least(4 * MiB);
    expect(answer.read_bytes - before.read_bytes).to.be.at.least(4 * MiB);
    expect(answer.write_bytes).to.equal(direct.write);
    expect(answer.read_bytes).to.equal(direct.read);
  });

  it('shows the same numbers on /metrics (no VM backend configured)', async () => {
    const [cpu] = await metrics('cpu');
    const nic = (await metrics('nic')).net0;
    const disk = (await metrics('disk')).rootfs;
    const res = await api().request('GET', '/metrics');
    expect(res.status).to.equal(200);
    const scraped = sample(res.text, 'hyperkern_guest_cpu_seconds_total', { guest: guestId, vcpu: '0' });
    const [after] = await metrics('cpu');
    expect(scraped, 'the container CPU series').to.be.within(cpu.cpu_time, after.cpu_time);
    expect(sample(res.text, 'hyperkern_guest_nic_receive_packets_total', { guest: guestId, device: 'net0' })).to.be.at.least(nic.rx_packets);
    expect(sample(res.text, 'hyperkern_guest_disk_written_bytes_total', { guest: guestId, device: 'rootfs' })).to.equal(disk.write_bytes);
    expect(sample(res.text, 'hyperkern_metrics_sweep_failed_guests', { kind: 'cpu', stage: 'lxc.containerCpuMetrics' })).to.equal(0);
  });

  it('answers 409 while the container is off, and leaves no veth behind after delete', async () => {
    const off = await api().request('POST', `/guests/${guestId}/poweroff`, null);
    expect((await jobEnd(off.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
    const res = await api().request('GET', `/guests/${guestId}/metrics/cpu`);
    expect(res.status, res.text).to.equal(409);
    expect(existsSync(`/sys/class/net/${device}`)).to.equal(false);
    const del = await api().request('DELETE', `/guests/${guestId}`, null);
    expect(del.status, del.text).to.equal(202);
    expect((await jobEnd(del.headers.get('x-guest-job-id')!)).Status).to.equal('Complete');
    expect(existsSync(`/sys/class/net/${device}`)).to.equal(false);
  });
});
