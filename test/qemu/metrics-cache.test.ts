/**
 * The QEMU plugin keeps the counter files of cpu and nic metrics open (a
 * pread per read, core/contract/backend-kit/counter-file.ts) and remembers each QEMU's
 * vCPU threads. Checked through the real agent on a real guest under TCG
 * whose QEMU is replaced (power off, tap deleted as a host reboot would,
 * start): the old process's files are closed, and the answers are the new
 * process's and the new tap's counters, between two direct reads of them,
 * never the old ones.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../support/agent.js';
import { shippedConfig } from '../support/configs.js';
import { INIT_REACHED } from '../fixtures/tiny-guest/index.js';
import { GuestShell, waitForConsole } from '../support/backend-testing.js';
import { disposeQemuTestAgent } from './kill-test-qemus.js';
import { QemuWorld } from './world.js';
import { FIRST_BOOT_MS, GUEST_ACTION_SECONDS } from '../support/load-budget.js';

const COUNTERS = ['rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped'];

/** The tap's counters read directly, by path. */
const tapCounters = (tap: string) => Object.fromEntries(COUNTERS.map((c) => [c, Number(readFileSync(`/sys/class/net/${tap}/statistics/${c}`, 'utf8'))]));

/**
 * The vCPU threads whose schedstat the agent holds open, in thread id order,
 * which is cpu-index order: QEMU starts the vCPU threads one after the other
 * from index 0 (its threads have no names to tell them by without
 * debug-threads=on).
 */
function heldVcpuThreads(holder: number, pid: number): number[] {
  return openProcFilesOf(holder, pid)
    .map((file) => new RegExp(`^/proc/${pid}/task/(\\d+)/schedstat$`).exec(file)?.[1])
    .filter((tid): tid is string => tid !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}
const schedstatSeconds = (pid: number, tid: number) => Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
const processSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

/** The files under /proc/<pid>/ that a process holds open. */
function openProcFilesOf(holder: number, pid: number): string[] {
  const open: string[] = [];
  for (const fd of readdirSync(`/proc/${holder}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${holder}/fd/${fd}`);
      if (target.startsWith(`/proc/${pid}/`)) open.push(target);
    } catch {
      /* closed while we looked */
    }
  }
  return open;
}

describe('QEMU metrics from kept-open counters, across a replaced QEMU and tap (real QEMU under TCG)', function () {
  this.timeout(600000); // bounded by the waits below, which scale with the measured load
  let world: QemuWorld;
  let agent: RunningAgent | undefined;

  before(async function () {
    this.timeout(300000);
    world = await QemuWorld.create({ bridge: true });
  });
  after(async () => {
    await disposeQemuTestAgent(agent);
    await world?.dispose();
  });

  it('answers the new process and the new tap after power off, tap deleted and start, and closes the old process files', async () => {
    const config = shippedConfig('qemu.json');
    const entry = config.plugins.find((p: { module: string }) => p.module === 'qemu');
    entry.options = { ...entry.options, accel: 'tcg', imagesDir: world.imagesDir, shutdownTimeoutSeconds: GUEST_ACTION_SECONDS };
    const images = config.plugins.find((p: { module: string }) => p.module === 'images');
    if (images) images.options = { ...images.options, imagesDir: world.imagesDir };
    agent = await startAgent({ config, env: { HYPERKERN_QEMU_ACCEL: 'tcg' } });
    const a = agent;
    const bridge = world.bridge!;
    const created = await a.request('POST', '/guests?wait=30&start=false', { memory: 256, cpu: 2, disks: [{ size: 32 }], nics: [{ network: bridge.name }], metadata: world.tinyBoot });
    expect(created.status, created.text).to.equal(200);
    const id = created.body.id as string;
    const tap = created.body.nics[0].device as string;
    const runDir = path.join(a.dataDir, 'plugins', 'qemu', id);
    const pidNow = () => Number(readFileSync(path.join(runDir, 'qemu.pid'), 'utf8'));
    const act = async (action: string) => {
      const res = await a.request('POST', `/guests/${id}/${action}?wait=60`);
      expect(res.status, `${action}: ${res.text}`).to.equal(200);
      expect(res.headers.get('x-guest-job-status'), `${action} job`).to.equal('Complete');
    };
    const metrics = async (type: string) => {
      const res = await a.request('GET', `/guests/${id}/metrics/${type}`);
      expect(res.status, `metrics/${type}: ${res.text}`).to.equal(200);
      return res.body;
    };

    // First QEMU: traffic on the tap, cpu and nic read (their files opened).
    await act('start');
    await waitForConsole(path.join(runDir, 'console.log'), INIT_REACHED, FIRST_BOOT_MS);
    const first = pidNow();
    const shell = await GuestShell.connect(path.join(runDir, 'serial1.sock'));
    await shell.run(`ip link set eth0 up && ip addr add ${bridge.guestAddress(5)}/24 dev eth0 && ping -c 3 -W 2 ${bridge.hostAddress}`, 30000);
    shell.close();
    const nicBefore = (await metrics('nic')).net0;
    expect(nicBefore.tx_packets, 'pings the guest sent').to.be.at.least(3);
    expect(await metrics('cpu')).to.have.length(2);
    expect(openProcFilesOf(a.pid, first), "the agent keeps the first QEMU's stat file open").to.include(`/proc/${first}/stat`);
    expect(heldVcpuThreads(a.pid, first), "and one schedstat per vCPU thread").to.have.length(2);

    // Replaced: power off, the tap gone as after a host reboot (start makes it again), start.
    await act('poweroff');
    expect(openProcFilesOf(a.pid, first), "the first QEMU's files are closed once it exited").to.deep.equal([]);
    execFileSync('ip', ['link', 'del', 'dev', tap]);
    await act('start');
    await waitForConsole(path.join(runDir, 'console.log'), INIT_REACHED, FIRST_BOOT_MS);
    const second = pidNow();
    expect(second).to.not.equal(first);

    // nic: the new tap's counters (the guest has not brought eth0 up this boot), not the old tap's.
    const tapBefore = tapCounters(tap);
    const nic = (await metrics('nic')).net0;
    const tapAfter = tapCounters(tap);
    // The tap's rx is what the guest transmitted, and so on (see metrics.ts).
    const asTap: Record<string, number> = {
      rx_bytes: nic.tx_bytes, rx_packets: nic.tx_packets, rx_errors: nic.tx_errors, rx_dropped: nic.tx_drops,
      tx_bytes: nic.rx_bytes, tx_packets: nic.rx_packets, tx_errors: nic.rx_errors, tx_dropped: nic.rx_drops,
    };
    for (const c of COUNTERS) expect(asTap[c], `${c} of the new tap`).to.be.within(tapBefore[c], tapAfter[c]);
    expect(nic.tx_packets, 'the old tap counted the pings; the new one did not see them').to.be.lessThan(nicBefore.tx_packets);

    // cpu: the new process's vCPU threads, between two direct reads.
    await metrics('cpu'); // opens the new process's files
    const threads = heldVcpuThreads(a.pid, second);
    const vcpuBefore = threads.map((tid) => schedstatSeconds(second, tid));
    const processBefore = processSeconds(second);
    const cpu = await metrics('cpu');
    const vcpuAfter = threads.map((tid) => schedstatSeconds(second, tid));
    const processAfter = processSeconds(second);
    expect(threads, "the new QEMU's two vCPU threads, the only ones held").to.have.length(2);
    expect(heldVcpuThreads(a.pid, first), "none of the first QEMU's").to.deep.equal([]);
    expect(cpu).to.have.length(2);
    cpu.forEach((entry: { cpu_time: number; vcpu_time: number }, i: number) => {
      expect(entry.vcpu_time, `vCPU ${i} time is the new thread's schedstat`).to.be.within(vcpuBefore[i], vcpuAfter[i]);
      expect(entry.cpu_time, "process time is the new QEMU's utime+stime").to.be.within(processBefore, processAfter);
    });
    expect(openProcFilesOf(a.pid, second), "the second QEMU's files are open").to.include(`/proc/${second}/stat`);
    expect((await a.request('DELETE', `/guests/${id}?wait=60`)).status).to.equal(200);
    expect(openProcFilesOf(a.pid, second), 'closed after delete').to.deep.equal([]);
  });
});
