/**
 * Rates from the metrics endpoints' counters: each poll is a sample of
 * monotonic counters; a rate is the difference to the previous sample over
 * the time between them. A counter that went down (the guest's emulator
 * restarted, counters from zero again) gives a gap, never a negative rate.
 * The window is bounded: the oldest points drop out.
 */
import type { GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics } from '../../core/contract/wire-types.js';

/** Counters of one kind at one instant, by series name. */
export type Counters = Record<string, number>;

/** A chart's data as uPlot takes it: x (unix seconds) then one array per series. */
export type Series = [number[], ...(number | null)[][]];

export class RateWindow {
  private previous?: { at: number; counters: Counters };
  readonly times: number[] = [];
  readonly values: (number | null)[][];

  /** `scale` turns a per-second difference into the unit drawn (100 for percent of one second). */
  constructor(
    readonly names: readonly string[],
    readonly capacity: number,
    private readonly scale: (name: string) => number = () => 1,
  ) {
    this.values = names.map(() => []);
  }

  /** Adds the rates since the previous sample (the first sample only sets the base). */
  add(atMs: number, counters: Counters): void {
    const previous = this.previous;
    this.previous = { at: atMs, counters };
    if (!previous || atMs <= previous.at) return;
    const seconds = (atMs - previous.at) / 1000;
    this.times.push(atMs / 1000);
    this.names.forEach((name, i) => {
      const now = counters[name];
      const before = previous.counters[name];
      const ok = Number.isFinite(now) && Number.isFinite(before) && now >= before;
      this.values[i].push(ok ? ((now - before) / seconds) * this.scale(name) : null);
    });
    if (this.times.length > this.capacity) {
      this.times.shift();
      for (const list of this.values) list.shift();
    }
  }

  /**
   * After a pause (the page hidden, another tab open): the next sample starts
   * a new base, so no rate spans the time nobody looked, and the line breaks
   * there (a null point) rather than bridging the gap.
   */
  rebase(atMs: number): void {
    if (this.previous && this.times.length > 0 && atMs / 1000 > this.times[this.times.length - 1]) {
      this.times.push(atMs / 1000);
      for (const list of this.values) list.push(null);
    }
    this.previous = undefined;
  }

  /** The newest rate of a series, if any. */
  latest(name: string): number | null {
    const list = this.values[this.names.indexOf(name)];
    return list && list.length > 0 ? list[list.length - 1] : null;
  }

  data(): Series {
    return [this.times, ...this.values];
  }
}

/** CPU seconds of every vCPU together, and the vCPU count (percent of the guest's vCPUs). */
export function cpuCounters(cpus: GuestCpuMetrics[]): Counters {
  const total = cpus.reduce((sum, cpu) => sum + (cpu.cpu_time ?? 0), 0);
  return { cpu: cpus.length > 0 ? total / cpus.length : NaN };
}

/** Bytes received and sent by every NIC that has counters (one without says why, and counts as none). */
export function nicCounters(nics: Record<string, Partial<GuestNicMetrics> & { counters?: string }>): Counters {
  const counted = Object.values(nics).filter((nic) => nic.counters === undefined);
  if (counted.length === 0) return { rx: NaN, tx: NaN };
  return {
    rx: counted.reduce((sum, nic) => sum + (nic.rx_bytes ?? 0), 0),
    tx: counted.reduce((sum, nic) => sum + (nic.tx_bytes ?? 0), 0),
  };
}

/** Bytes read and written by every disk (Go omits zero fields: absent reads as 0). */
export function diskCounters(disks: Record<string, Partial<GuestDiskMetrics>>): Counters {
  const list = Object.values(disks);
  if (list.length === 0) return { read: NaN, write: NaN };
  return {
    read: list.reduce((sum, disk) => sum + (disk.read_bytes ?? 0), 0),
    write: list.reduce((sum, disk) => sum + (disk.write_bytes ?? 0), 0),
  };
}

/** 1536 -> "1.5 KiB": rates for labels a person reads. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
