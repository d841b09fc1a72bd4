/**
 * Guest metrics from libvirt's bulk domain statistics (virDomainListGetStats,
 * `virsh domstats`): one call returns the cpu, vcpu, block or interface
 * counters of any number of domains, so concurrent requests for many guests
 * cost one command, not one per guest (see BulkStats).
 *
 * Drivers without bulk statistics (the test driver returns only the state
 * group) are read per device instead, with domblkstat, domifstat and
 * vcpuinfo.
 */
import type { GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics } from '../../core/contract/index.js';
import type { VirshShell } from './virsh-shell.js';

/** One domain's statistics: "block.0.rd.bytes" -> "512". */
export type DomainStats = Map<string, string>;

/** Parses `virsh domstats` output into domain name -> statistics. */
export function parseDomStats(output: string): Map<string, DomainStats> {
  const domains = new Map<string, DomainStats>();
  let current: DomainStats | undefined;
  for (const line of output.split('\n')) {
    const header = /^Domain: '(.*)'\s*$/.exec(line);
    if (header) {
      current = new Map();
      domains.set(header[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return domains;
}

const NS = 1e9;
function num(stats: DomainStats, key: string): number {
  const value = Number(stats.get(key));
  return Number.isFinite(value) ? value : 0;
}

/**
 * One entry per vCPU. vcpu_time is the vCPU thread's own time; cpu_time is
 * the whole domain's CPU time (vCPUs plus QEMU's I/O and emulation threads),
 * the same on every entry, as the QEMU backend reports it.
 */
export function cpuMetricsOf(stats: DomainStats): GuestCpuMetrics[] | undefined {
  if (!stats.has('vcpu.current')) return undefined;
  const count = num(stats, 'vcpu.current');
  const vcpuTimes = Array.from({ length: count }, (_, i) => num(stats, `vcpu.${i}.time`) / NS);
  const total = stats.has('cpu.time') ? num(stats, 'cpu.time') / NS : vcpuTimes.reduce((a, b) => a + b, 0);
  return vcpuTimes.map((vcpu_time) => ({ cpu_time: total, vcpu_time }));
}

/** Keyed by guest device (libvirt's target dev, e.g. vda). */
export function diskMetricsOf(stats: DomainStats): Record<string, GuestDiskMetrics> | undefined {
  if (!stats.has('block.count')) return undefined;
  const out: Record<string, GuestDiskMetrics> = {};
  for (let i = 0; i < num(stats, 'block.count'); i++) {
    const name = stats.get(`block.${i}.name`);
    // Backing-chain entries repeat a device name with a backingIndex; the first is the active layer.
    if (!name || out[name]) continue;
    const b = `block.${i}.`;
    out[name] = {
      disk: name,
      read_ops: num(stats, `${b}rd.reqs`),
      read_bytes: num(stats, `${b}rd.bytes`),
      read_time: num(stats, `${b}rd.times`) / NS,
      write_ops: num(stats, `${b}wr.reqs`),
      write_bytes: num(stats, `${b}wr.bytes`),
      write_time: num(stats, `${b}wr.times`) / NS,
      flush_ops: num(stats, `${b}fl.reqs`),
      flush_time: num(stats, `${b}fl.times`) / NS,
    };
  }
  return out;
}

/**
 * Keyed by host device (libvirt's target dev). libvirt already reports these
 * from the guest's side (it swaps the tap's rx and tx), so they map as they are.
 */
export function nicCountersOf(stats: DomainStats): Map<string, Omit<GuestNicMetrics, 'name'>> | undefined {
  if (!stats.has('net.count')) return undefined;
  const out = new Map<string, Omit<GuestNicMetrics, 'name'>>();
  for (let i = 0; i < num(stats, 'net.count'); i++) {
    const device = stats.get(`net.${i}.name`);
    if (!device) continue;
    const n = `net.${i}.`;
    out.set(device, {
      rx_bytes: num(stats, `${n}rx.bytes`),
      rx_packets: num(stats, `${n}rx.pkts`),
      rx_errors: num(stats, `${n}rx.errs`),
      rx_drops: num(stats, `${n}rx.drop`),
      tx_bytes: num(stats, `${n}tx.bytes`),
      tx_packets: num(stats, `${n}tx.pkts`),
      tx_errors: num(stats, `${n}tx.errs`),
      tx_drops: num(stats, `${n}tx.drop`),
    });
  }
  return out;
}

/** The statistics groups each metrics type needs: reading fewer groups asks QEMU less. */
export const STATS_GROUPS = {
  cpu: ['--cpu-total', '--vcpu'],
  disk: ['--block'],
  nic: ['--interface'],
} as const;

/**
 * Reads statistics groups of domains with `virsh domstats`, batching: a
 * request for one domain is read at once, and requests that arrive while a
 * read is in flight are read together in the next call, however many guests
 * they are for. libvirt's cost is per domain (a QEMU round trip each for
 * block and vcpu statistics), so reading only the domains asked for keeps a
 * single request fast, and batching keeps a sweep over hundreds of guests to
 * a few calls.
 *
 * With `maxAgeMs` > 0 a read covers every running domain of this plugin and
 * its result is reused for that long: for monitors that sweep all guests
 * often, at the price of staler numbers and a slower first request.
 */
export class BulkStats {
  private readonly cache = new Map<string, { at: number; stats: DomainStats | undefined }>();
  private waiting = new Map<string, { resolve: (s: DomainStats | undefined) => void; reject: (e: Error) => void }[]>();
  private reading = false;
  /** domstats calls made so far (for health and tests). */
  reads = 0;

  constructor(
    private readonly virsh: VirshShell,
    private readonly maxAgeMs: number,
    private readonly groups: readonly string[],
    /** This plugin's running domains, read along when results are reused (maxAgeMs > 0). */
    private readonly domains: () => Promise<string[]> = async () => [],
  ) {}

  /** Statistics of one domain; undefined when it does not run. */
  of(domain: string): Promise<DomainStats | undefined> {
    if (this.maxAgeMs > 0) {
      const cached = this.cache.get(domain);
      if (cached && Date.now() - cached.at <= this.maxAgeMs) return Promise.resolve(cached.stats);
    }
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(domain) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(domain, list);
      this.pump();
    });
  }

  /** Forget cached results (a domain started or stopped). */
  invalidate(): void {
    this.cache.clear();
  }

  private pump(): void {
    if (this.reading || this.waiting.size === 0) return;
    const batch = this.waiting;
    this.waiting = new Map();
    this.reading = true;
    this.read([...batch.keys()])
      .then((results) => {
        for (const [domain, waiters] of batch) {
          const result = results.get(domain);
          for (const w of waiters) result instanceof Error ? w.reject(result) : w.resolve(result);
        }
      })
      .catch((error: Error) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(error);
      })
      .finally(() => {
        this.reading = false;
        this.pump();
      });
  }

  /** Domain -> its statistics, undefined (not running) or the error reading it. */
  private async read(wanted: string[]): Promise<Map<string, DomainStats | undefined | Error>> {
    const started = Date.now();
    const names = new Set(wanted);
    if (this.maxAgeMs > 0) for (const d of await this.domains()) names.add(d);
    // --nowait: a domain busy with a job (e.g. a shutdown) answers with what it has instead of holding up the batch.
    const args = ['domstats', '--state', ...this.groups, '--nowait'];
    const results = new Map<string, DomainStats | undefined | Error>();
    try {
      this.reads += 1;
      const parsed = parseDomStats(await this.virsh.run([...args, ...names], { readOnly: true }));
      for (const name of names) results.set(name, runningOnly(parsed.get(name)));
    } catch (error) {
      if (names.size === 1) throw error;
      // One domain gone (undefined outside hyperkern) fails the whole call: read them one by one.
      for (const name of names) {
        try {
          this.reads += 1;
          results.set(name, runningOnly(parseDomStats(await this.virsh.run([...args, name], { readOnly: true })).get(name)));
        } catch (one) {
          results.set(name, one as Error);
        }
      }
    }
    if (this.maxAgeMs > 0) {
      for (const [name, stats] of results) if (!(stats instanceof Error)) this.cache.set(name, { at: started, stats });
    }
    return results;
  }
}

function runningOnly(stats: DomainStats | undefined): DomainStats | undefined {
  return stats && isRunningState(stats) ? stats : undefined;
}

/** state.state 1 (running), 2 (blocked), 3 (paused), 4 (shutting down), 7 (pmsuspended) have a QEMU. */
function isRunningState(stats: DomainStats): boolean {
  return ['1', '2', '3', '4', '7'].includes(stats.get('state.state') ?? '');
}

// ---- per-device reads, for drivers without bulk statistics -----------------

/** `domblkstat DOM DEV` prints "vda rd_req 12" lines. */
export async function readBlockStat(virsh: VirshShell, domain: string, device: string): Promise<GuestDiskMetrics> {
  const fields = deviceFields(await virsh.run(['domblkstat', domain, device], { readOnly: true }));
  const get = (key: string) => fields.get(key) ?? 0;
  return {
    disk: device,
    read_ops: get('rd_req'),
    read_bytes: get('rd_bytes'),
    read_time: get('rd_total_times') / NS,
    write_ops: get('wr_req'),
    write_bytes: get('wr_bytes'),
    write_time: get('wr_total_times') / NS,
    flush_ops: get('flush_operations'),
    flush_time: get('flush_total_times') / NS,
  };
}

/** `domifstat DOM DEV` prints "vnet0 rx_bytes 12" lines. */
export async function readIfStat(virsh: VirshShell, domain: string, device: string): Promise<Omit<GuestNicMetrics, 'name'>> {
  const fields = deviceFields(await virsh.run(['domifstat', domain, device], { readOnly: true }));
  const get = (key: string) => fields.get(key) ?? 0;
  return {
    rx_bytes: get('rx_bytes'),
    rx_packets: get('rx_packets'),
    rx_errors: get('rx_errs'),
    rx_drops: get('rx_drop'),
    tx_bytes: get('tx_bytes'),
    tx_packets: get('tx_packets'),
    tx_errors: get('tx_errs'),
    tx_drops: get('tx_drop'),
  };
}

/** `vcpuinfo DOM` prints a "CPU time: 1.5s" line per vCPU. */
export async function readVcpuInfo(virsh: VirshShell, domain: string): Promise<GuestCpuMetrics[]> {
  const output = await virsh.run(['vcpuinfo', domain], { readOnly: true });
  const times = [...output.matchAll(/^CPU time:\s+([\d.]+)s/gm)].map((m) => Number(m[1]));
  const total = times.reduce((a, b) => a + b, 0);
  return times.map((vcpu_time) => ({ cpu_time: total, vcpu_time }));
}

function deviceFields(output: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of output.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length === 3) fields.set(parts[1], Number(parts[2]));
  }
  return fields;
}
