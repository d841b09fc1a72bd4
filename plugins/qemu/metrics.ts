/**
 * Guest metrics from the hypervisor's own counters: vCPU thread times from
 * /proc, block statistics from QMP, NIC counters from the host tap devices.
 * These read only; they never take a lifecycle lock, so a metrics request is
 * answered while a long shutdown job runs.
 */
import { CounterFile, parseProcStat, parseSchedstatSeconds, type Guest, type GuestCpuMetrics, type GuestDiskMetrics, type GuestNicMetrics } from '../../core/contract/index.js';
import type { Machine } from './machine.js';
import { readTapCounters } from './taps.js';

// The /proc files of cpu metrics are kept open per QEMU process
// (backend-kit/counter-file.ts) and parsed by the backend kit (process-cpu.ts): a pread
// instead of a path walk, open, fstat, two reads and a close per file.

interface CpuInfoFast {
  'cpu-index': number;
  'thread-id': number;
}

/** A vCPU thread's on-CPU time: schedstat has nanoseconds; stat, where there is no schedstat, only ticks. */
class VcpuCounter {
  private constructor(
    private readonly file: CounterFile,
    private readonly nanoseconds: boolean,
  ) {}

  static open(pid: number, tid: number): VcpuCounter {
    try {
      return new VcpuCounter(new CounterFile(`/proc/${pid}/task/${tid}/schedstat`), true);
    } catch {
      return new VcpuCounter(new CounterFile(`/proc/${pid}/task/${tid}/stat`), false);
    }
  }

  seconds(): number {
    const text = this.file.read();
    return this.nanoseconds ? parseSchedstatSeconds(text) : parseProcStat(text).cpuSeconds;
  }

  close(): void {
    this.file.close();
  }
}

/** The open counter files of one QEMU process: its own stat and one per vCPU, in cpu-index order. */
interface CpuCounters {
  process: CounterFile;
  vcpus: VcpuCounter[];
}

function openCounters(pid: number, cpus: CpuInfoFast[]): CpuCounters {
  const process = new CounterFile(`/proc/${pid}/stat`);
  const vcpus: VcpuCounter[] = [];
  try {
    for (const cpu of [...cpus].sort((a, b) => a['cpu-index'] - b['cpu-index'])) vcpus.push(VcpuCounter.open(pid, cpu['thread-id']));
  } catch (error) {
    closeCounters({ process, vcpus });
    throw error;
  }
  return { process, vcpus };
}

function closeCounters(counters: CpuCounters): void {
  counters.process.close();
  for (const vcpu of counters.vcpus) vcpu.close();
}

/**
 * vCPU threads per running QEMU. They are fixed for the life of the process
 * (hyperkern does no CPU hotplug, and the agent holds QEMU's only QMP
 * connection), so after the first answer cpu metrics are reads of files
 * kept open, with no QMP round trip: QEMU under load (TCG, many guests)
 * answers QMP in milliseconds, /proc in microseconds. The files are closed
 * when QEMU exits or the agent lets go of it.
 */
const cpuCounters = new WeakMap<Machine, Promise<CpuCounters>>();

function countersOf(machine: Machine): Promise<CpuCounters> {
  let counters = cpuCounters.get(machine);
  if (!counters) {
    const opened = machine.qmp.execute<CpuInfoFast[]>('query-cpus-fast').then((cpus) => openCounters(machine.pid, cpus));
    counters = opened;
    // A failed query or open is not remembered: the next request asks again.
    opened.catch(() => forget(machine, opened));
    cpuCounters.set(machine, opened);
    void machine.exited.then(() => forget(machine, opened));
  }
  return counters;
}

/** Drops (and closes) one remembered set of counters; a later request opens new ones. */
function forget(machine: Machine, counters: Promise<CpuCounters>): void {
  if (cpuCounters.get(machine) === counters) cpuCounters.delete(machine);
  counters.then(closeCounters, () => {});
}

export async function cpuMetrics(machine: Machine, retried = false): Promise<GuestCpuMetrics[]> {
  const counters = countersOf(machine);
  const { process, vcpus } = await counters;
  try {
    const cpu_time = parseProcStat(process.read()).cpuSeconds;
    return vcpus.map((vcpu) => ({ cpu_time, vcpu_time: vcpu.seconds() }));
  } catch (error) {
    // A vCPU thread that is gone (ESRCH) means the remembered list is stale: ask QEMU once more.
    forget(machine, counters);
    if (retried) throw error;
    return cpuMetrics(machine, true);
  }
}

interface BlockStats {
  device: string;
  qdev?: string;
  stats: {
    rd_operations: number;
    rd_bytes: number;
    rd_total_time_ns: number;
    wr_operations: number;
    wr_bytes: number;
    wr_total_time_ns: number;
    flush_operations: number;
    flush_total_time_ns: number;
  };
}

const DRIVE_PREFIX = 'drive-';

export async function diskMetrics(machine: Machine, guest: Guest): Promise<Record<string, GuestDiskMetrics>> {
  const stats = await machine.qmp.execute<BlockStats[]>('query-blockstats');
  const known = new Set(guest.disks.map((d) => d.device));
  const result: Record<string, GuestDiskMetrics> = {};
  for (const entry of stats) {
    // Our drives are named drive-<guest device> on the command line.
    if (!entry.device.startsWith(DRIVE_PREFIX)) continue;
    const device = entry.device.slice(DRIVE_PREFIX.length);
    if (!known.has(device)) continue;
    const s = entry.stats;
    result[device] = {
      disk: device,
      read_ops: s.rd_operations,
      read_bytes: s.rd_bytes,
      read_time: s.rd_total_time_ns / 1e9,
      write_ops: s.wr_operations,
      write_bytes: s.wr_bytes,
      write_time: s.wr_total_time_ns / 1e9,
      flush_ops: s.flush_operations,
      flush_time: s.flush_total_time_ns / 1e9,
    };
  }
  return result;
}

/**
 * Entry for a NIC that has no counters. It carries no numbers on purpose:
 * zeros would claim the NIC moved no traffic.
 */
export interface UnavailableNicMetrics {
  name: string;
  counters: string;
}

export const USER_MODE_COUNTERS = 'unavailable: user-mode networking has no host device to count';

export async function nicMetrics(guest: Guest): Promise<Record<string, GuestNicMetrics | UnavailableNicMetrics>> {
  const result: Record<string, GuestNicMetrics | UnavailableNicMetrics> = {};
  for (const nic of guest.nics) {
    if (!nic.device) {
      result[nic.name] = { name: nic.name, counters: USER_MODE_COUNTERS };
      continue;
    }
    const tap = readTapCounters(nic.device);
    if (!tap) {
      result[nic.name] = { name: nic.name, counters: `unavailable: tap ${nic.device} does not exist` };
      continue;
    }
    // The tap is the host's end of the wire: what it transmits the guest receives.
    result[nic.name] = {
      name: nic.name,
      rx_bytes: tap.tx_bytes,
      rx_packets: tap.tx_packets,
      rx_errors: tap.tx_errors,
      rx_drops: tap.tx_dropped,
      tx_bytes: tap.rx_bytes,
      tx_packets: tap.rx_packets,
      tx_errors: tap.rx_errors,
      tx_drops: tap.rx_dropped,
    };
  }
  return result;
}
