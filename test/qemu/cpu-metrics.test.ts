/**
 * QEMU cpu metrics come from /proc, not QMP (plugins/qemu/metrics.ts): the
 * vCPU thread ids QEMU reports once (query-cpus-fast) and then each
 * thread's schedstat, plus the process's utime+stime. Checked here against a
 * real QEMU under TCG with 2 vCPUs running firmware (no guest OS needed):
 * the threads are QEMU's own tasks, every answer lies between two direct
 * reads of the same counters, the counters never go down, and the numbers
 * are plausible (the vCPUs run, the process time covers its vCPUs, and
 * nothing exceeds wall-clock time times the host's CPUs).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Machine } from '../../plugins/qemu/machine.js';
import { cpuMetrics } from '../../plugins/qemu/metrics.js';
import { launchQemu, terminate } from '../../plugins/qemu/qemu-process.js';
import { RunDir } from '../../plugins/qemu/run-dir.js';

const schedstatSeconds = (pid: number, tid: number) => Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
const processSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

describe('QEMU cpu metrics against a real QEMU', function () {
  this.timeout(60000);
  let root: string;
  let pid: number | undefined;
  let machine: Machine | undefined;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'hkc-'));
    const runDir = new RunDir(root, 'cpu');
    await mkdir(runDir.dir);
    const launchedAt = performance.now();
    // Not paused (-S): the firmware runs on both vCPUs, so their times move.
    pid = await launchQemu('qemu-system-x86_64', [
      '-machine', 'q35', '-accel', 'tcg', '-smp', '2', '-m', '64', '-nodefaults', '-display', 'none',
      '-daemonize', '-pidfile', runDir.pidFile, '-qmp', `unix:${runDir.qmpSocket},server=on,wait=off`,
    ], runDir);
    machine = await Machine.attach('cpu', runDir, pid, { onEvent: () => undefined, onExit: () => undefined });
    (machine as unknown as { launchedAt: number }).launchedAt = launchedAt;
  });
  after(async () => {
    machine?.qmp.close();
    if (pid) await terminate(pid, 2000);
    await rm(root, { recursive: true, force: true });
  });

  it('reads the vCPU threads QEMU names, between two direct reads, never going down, with plausible values', async () => {
    const m = machine!;
    const qemuPid = pid!;
    const launchedAt = (m as unknown as { launchedAt: number }).launchedAt;
    const threads = (await m.qmp.execute<Array<{ 'cpu-index': number; 'thread-id': number }>>('query-cpus-fast')).sort((a, b) => a['cpu-index'] - b['cpu-index']);
    expect(threads, 'one thread per vCPU').to.have.length(2);
    for (const t of threads) {
      expect(t['thread-id'], 'a vCPU thread is its own task').to.not.equal(qemuPid);
      expect(existsSync(`/proc/${qemuPid}/task/${t['thread-id']}`), `thread ${t['thread-id']} is a task of QEMU ${qemuPid}`).to.equal(true);
    }
    let previous: Array<{ cpu_time: number; vcpu_time: number }> | undefined;
    const first = await cpuMetrics(m);
    for (let i = 0; i < 8; i++) {
      const before = threads.map((t) => schedstatSeconds(qemuPid, t['thread-id']));
      const processBefore = processSeconds(qemuPid);
      const metrics = await cpuMetrics(m);
      const after = threads.map((t) => schedstatSeconds(qemuPid, t['thread-id']));
      const processAfter = processSeconds(qemuPid);
      const wallSeconds = (performance.now() - launchedAt) / 1000;
      expect(metrics).to.have.length(2);
      metrics.forEach((entry, cpu) => {
        expect(entry.vcpu_time, `vCPU ${cpu} time is that thread's schedstat`).to.be.within(before[cpu], after[cpu]);
        expect(entry.cpu_time, 'process time is its utime+stime').to.be.within(processBefore, processAfter);
        expect(entry.vcpu_time, `vCPU ${cpu} time is at most wall-clock time`).to.be.at.most(wallSeconds);
        if (previous) {
          expect(entry.vcpu_time, `vCPU ${cpu} time never goes down`).to.be.at.least(previous[cpu].vcpu_time);
          expect(entry.cpu_time, 'process time never goes down').to.be.at.least(previous[cpu].cpu_time);
        }
      });
      // utime+stime come in 10 ms ticks; schedstat in nanoseconds.
      expect(metrics[0].cpu_time, 'the process time covers its vCPUs').to.be.at.least(metrics[0].vcpu_time + metrics[1].vcpu_time - 0.05);
      expect(metrics[0].cpu_time, 'at most wall-clock time times the host CPUs').to.be.at.most(wallSeconds * os.cpus().length);
      previous = metrics;
      await new Promise((r) => setTimeout(r, 250));
    }
    // The firmware runs on the boot vCPU (the other waits for a start-up IPI).
    expect(previous![0].vcpu_time, 'the boot vCPU ran').to.be.greaterThan(0);
    expect(previous![0].vcpu_time + previous![1].vcpu_time, 'vCPU time accrued over the samples').to.be.at.least(first[0].vcpu_time + first[1].vcpu_time);
  });
});
