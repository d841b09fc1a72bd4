/**
 * Guest metrics from the hypervisor's own counters: vCPU thread times from
 * /proc, block statistics from QMP, NIC counters from the host tap devices.
 * These read only; they never take a lifecycle lock, so a metrics request is
 * answered while a long shutdown job runs.
 */
import { procCpuMetrics, type Guest, type GuestCpuMetrics, type GuestDiskMetrics, type GuestNicMetrics } from '../../core/contract/index.js';
import type { Machine } from './machine.js';
import { readTapCounters } from './taps.js';

interface CpuInfoFast {
  'cpu-index': number;
  'thread-id': number;
}

/**
 * vCPU threads per running QEMU. They are fixed for the life of the process
 * (hyperkern does no CPU hotplug), so after the first answer cpu metrics are
 * /proc reads only, with no QMP round trip: QEMU under load (TCG, many
 * guests) answers QMP in milliseconds, /proc in microseconds.
 */
const vcpuThreads = new WeakMap<Machine, Promise<CpuInfoFast[]>>();

function threadsOf(machine: Machine): Promise<CpuInfoFast[]> {
  let threads = vcpuThreads.get(machine);
  if (!threads) {
    threads = machine.qmp.execute<CpuInfoFast[]>('query-cpus-fast').then((cpus) => [...cpus].sort((a, b) => a['cpu-index'] - b['cpu-index']));
    // A failed query is not remembered: the next request asks again.
    threads.catch(() => vcpuThreads.delete(machine));
    vcpuThreads.set(machine, threads);
  }
  return threads;
}

export async function cpuMetrics(machine: Machine, retried = false): Promise<GuestCpuMetrics[]> {
  const cpus = await threadsOf(machine);
  try {
    return procCpuMetrics(machine.pid, cpus.map((cpu) => cpu['thread-id']));
  } catch (error) {
    // A vCPU thread that is gone means the remembered list is stale: ask QEMU once more.
    vcpuThreads.delete(machine);
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
    const tap = await readTapCounters(nic.device);
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
