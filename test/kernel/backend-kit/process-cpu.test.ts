/**
 * A local process's cpu metrics from /proc (backend-kit/process-cpu.ts), the
 * code both QEMU-running backends use, on this test process's own /proc
 * entries: the shape, values between two direct reads, a reused pid refused
 * by its start time, and a thread that is gone.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseProcStat, parseSchedstatSeconds, procCpuMetrics, readProcStat } from '../../../core/contract/index.js';

/** Our own main thread's schedstat time, read directly. */
function ownThreadSeconds(): number {
  return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
}

describe('backend kit: process cpu from /proc', () => {
  it('parses stat lines whose command name holds spaces and parentheses', () => {
    // pid (comm) state ppid ... utime(14)=250 stime(15)=50 ... starttime(22)=987654
    const fields = ['S', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '250', '50', '0', '0', '20', '0', '8', '0', '987654', '1000'];
    const parsed = parseProcStat(`4250 (CPU 0/TCG) (x)) ${fields.join(' ')}\n`);
    expect(parsed.startTicks).to.equal(987654);
    // utime + stime = 300 ticks of the host's clock (getconf CLK_TCK).
    const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim());
    expect(parsed.cpuSeconds).to.equal(300 / hz);
    expect(parseSchedstatSeconds('2447366697 1234 56\n')).to.equal(2.447366697);
  });

  it('reads a process and its threads between two direct reads, in thread order', () => {
    // Burn some CPU so the numbers move.
    for (let end = Date.now() + 30; Date.now() < end; );
    const before = { process: readProcStat(`/proc/${process.pid}/stat`).cpuSeconds, thread: ownThreadSeconds() };
    const [first, second] = procCpuMetrics(process.pid, [process.pid, process.pid]);
    const after = { process: readProcStat(`/proc/${process.pid}/stat`).cpuSeconds, thread: ownThreadSeconds() };
    expect(first.cpu_time).to.be.within(before.process, after.process);
    expect(first.vcpu_time).to.be.within(before.thread, after.thread);
    expect(first.vcpu_time).to.be.greaterThan(0);
    expect(second.cpu_time, 'the whole process on every entry').to.equal(first.cpu_time);
  });

  it('refuses a pid whose start time is not the one given, and a thread that is gone', () => {
    const { startTicks } = readProcStat(`/proc/${process.pid}/stat`);
    expect(procCpuMetrics(process.pid, [process.pid], startTicks)).to.have.length(1);
    expect(() => procCpuMetrics(process.pid, [process.pid], startTicks + 1)).to.throw(/is not the one it was/);
    const exited = spawnSync('true').pid!;
    expect(() => procCpuMetrics(process.pid, [exited]), 'an exited process is no thread of ours').to.throw();
  });
});
