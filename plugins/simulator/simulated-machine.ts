/**
 * One simulated guest: a power state machine plus counters that grow with
 * running time, so metrics behave like a real guest's (monotonic, standing
 * still while the guest is off or paused).
 */
import type { Guest, GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics } from '../../core/contract/index.js';

/** Rates per second of running time, loosely those of a mostly idle VM. */
const RATES = {
  cpuShare: 0.25,
  diskReadOps: 40,
  diskWriteOps: 25,
  bytesPerOp: 4096,
  opSeconds: 0.0004,
  nicPackets: 120,
  bytesPerPacket: 800,
};

export class SimulatedMachine {
  /** Seconds spent running before the current run began. */
  private banked = 0;
  private runningSince: number | undefined;

  constructor(public state: string) {
    if (state === 'running') this.runningSince = Date.now();
  }

  transition(next: string): void {
    if (this.runningSince !== undefined) this.banked += (Date.now() - this.runningSince) / 1000;
    this.runningSince = next === 'running' ? Date.now() : undefined;
    this.state = next;
  }

  /**
   * Per disk: seconds of writes a rollback took back (the disk holds what
   * was written until uptime - rewind). Made on the first rollback: an
   * empty Map per machine was ~4 MiB of the agent's heap at 10,000 guests.
   */
  private rewound?: Map<string, number>;

  /**
   * What a disk holds, as the running seconds of writes it has: it grows
   * while the guest runs and goes back when the disk is rolled back.
   */
  diskContent(device: string): number {
    return round(this.uptime() - (this.rewound?.get(device) ?? 0));
  }

  /** The disk holds `content` again (a rollback). */
  rollBackDisk(device: string, content: number): void {
    (this.rewound ??= new Map()).set(device, this.uptime() - content);
  }

  /** Seconds of running time so far. */
  uptime(): number {
    return this.banked + (this.runningSince === undefined ? 0 : (Date.now() - this.runningSince) / 1000);
  }

  cpu(guest: Guest): GuestCpuMetrics[] {
    const t = this.uptime();
    const out: GuestCpuMetrics[] = [];
    for (let i = 0; i < Math.max(1, guest.cpu); i++) {
      const vcpu = t * RATES.cpuShare * (1 + i * 0.1);
      out.push({ cpu_time: round(vcpu * 1.05), vcpu_time: round(vcpu) });
    }
    return out;
  }

  disk(guest: Guest): Record<string, GuestDiskMetrics> {
    const t = this.uptime();
    const out: Record<string, GuestDiskMetrics> = {};
    for (const disk of guest.disks) {
      const reads = Math.floor(t * RATES.diskReadOps);
      const writes = Math.floor(t * RATES.diskWriteOps);
      out[disk.device] = {
        disk: disk.device,
        read_ops: reads,
        read_bytes: reads * RATES.bytesPerOp,
        read_time: round(reads * RATES.opSeconds),
        write_ops: writes,
        write_bytes: writes * RATES.bytesPerOp,
        write_time: round(writes * RATES.opSeconds),
        flush_ops: Math.floor(writes / 10),
        flush_time: round((writes / 10) * RATES.opSeconds),
      };
    }
    return out;
  }

  nic(guest: Guest): Record<string, GuestNicMetrics> {
    const t = this.uptime();
    const out: Record<string, GuestNicMetrics> = {};
    for (const nic of guest.nics) {
      const rx = Math.floor(t * RATES.nicPackets);
      const tx = Math.floor(t * RATES.nicPackets * 0.6);
      out[nic.name] = {
        name: nic.name,
        rx_bytes: rx * RATES.bytesPerPacket,
        rx_packets: rx,
        rx_errors: 0,
        rx_drops: 0,
        tx_bytes: tx * RATES.bytesPerPacket,
        tx_packets: tx,
        tx_errors: 0,
        tx_drops: 0,
      };
    }
    return out;
  }
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
