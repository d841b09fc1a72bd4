/**
 * The metrics stages: bulk statistics of running domains, read on their own
 * connection so they never wait behind a lifecycle job, keyed the way the
 * API promises (disks by guest device, NICs by name).
 */
import { StageRejection, type Guest, type GuestMetricsResponse, type GuestNicMetrics } from '../../core/contract/index.js';
import { BulkStats, STATS_GROUPS, cpuMetricsOf, diskMetricsOf, nicCountersOf, readBlockStat, readIfStat, readVcpuInfo } from './domain-stats.js';
import type { Domains } from './domains.js';
import { readInterfaces } from './existing-domain.js';
import type { ProcCpuMetrics } from './proc-cpu.js';
import type { VirshShell } from './virsh-shell.js';

type MetricsType = 'cpu' | 'disk' | 'nic';

export class GuestMetrics {
  /** One bulk reader per metrics type, each asking libvirt only for its groups. */
  private readonly stats: Record<MetricsType, BulkStats>;

  constructor(
    private readonly domains: Domains,
    private readonly reader: VirshShell,
    statsMaxAgeMs: number,
    /** cpu metrics from /proc for local domains (proc-cpu.ts); undefined: always domstats. */
    private readonly procCpu?: ProcCpuMetrics,
  ) {
    const ours = () => this.domains.running();
    this.stats = {
      cpu: new BulkStats(reader, statsMaxAgeMs, STATS_GROUPS.cpu, ours),
      disk: new BulkStats(reader, statsMaxAgeMs, STATS_GROUPS.disk, ours),
      nic: new BulkStats(reader, statsMaxAgeMs, STATS_GROUPS.nic, ours),
    };
  }

  /** How many bulk reads each type has made (for health details). */
  get reads(): Record<MetricsType, number> {
    return { cpu: this.stats.cpu.reads, disk: this.stats.disk.reads, nic: this.stats.nic.reads };
  }

  /** Drops cached statistics: a domain started, stopped or went away. */
  invalidate(): void {
    for (const reader of Object.values(this.stats)) reader.invalidate();
    this.procCpu?.invalidate();
  }

  /** Where cpu metrics came from so far (for health details). */
  get cpuSources(): { proc: number; fallback: number } | undefined {
    return this.procCpu && { ...this.procCpu.counts };
  }

  async cpu(guest: Guest): Promise<GuestMetricsResponse> {
    // Fresh from /proc whatever statsMaxAgeMs says: it costs less than reusing a sweep.
    const fromProc = this.procCpu?.cpu(this.domains.require(guest));
    if (fromProc) return { guest, type: 'cpu', cpu: fromProc };
    const { domain, stats } = await this.domainStats(guest, 'cpu');
    return { guest, type: 'cpu', cpu: cpuMetricsOf(stats) ?? (await readVcpuInfo(this.reader, domain)) };
  }

  async disk(guest: Guest): Promise<GuestMetricsResponse> {
    const { domain, stats } = await this.domainStats(guest, 'disk');
    let disk = diskMetricsOf(stats);
    if (!disk) {
      disk = {};
      for (const d of guest.disks) disk[d.device] = await readBlockStat(this.reader, domain, d.device);
    }
    // Only the guest's own disks, keyed by device, as the API promises.
    const known = new Set(guest.disks.map((d) => d.device));
    return { guest, type: 'disk', disk: Object.fromEntries(Object.entries(disk).filter(([device]) => known.has(device))) };
  }

  async nic(guest: Guest): Promise<GuestMetricsResponse> {
    const { domain, stats } = await this.domainStats(guest, 'nic');
    const counters = nicCountersOf(stats);
    const nic: Record<string, GuestNicMetrics> = {};
    let devices: Map<string, string> | undefined;
    for (const n of guest.nics) {
      let device = n.device;
      if (!counters?.has(device)) {
        // Adopted domains get new host devices (vnetN) at each start: find it by MAC.
        devices ??= await this.hostDevicesByMac(domain);
        device = devices.get(n.mac.toLowerCase()) ?? device;
      }
      if (!device) continue; // user-mode networking: no host device, no counters
      const values = counters?.get(device) ?? (counters ? undefined : await readIfStat(this.reader, domain, device));
      if (values) nic[n.name] = { name: n.name, ...values };
    }
    return { guest, type: 'nic', nic };
  }

  /** Bulk statistics of a running guest's domain, or a 409 when it is not running. */
  private async domainStats(guest: Guest, type: MetricsType) {
    const domain = this.domains.require(guest);
    const stats = await this.stats[type].of(domain);
    if (!stats) throw new StageRejection(409, `guest ${guest.id} is not running (state "${guest.state}"); ${type} metrics need a running domain`);
    return { domain, stats };
  }

  private async hostDevicesByMac(domain: string): Promise<Map<string, string>> {
    const interfaces = (await readInterfaces(this.reader, domain)).filter((i) => i.device);
    return new Map(interfaces.map((i) => [i.mac, i.device]));
  }
}
