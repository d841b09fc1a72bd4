/**
 * Guest metrics for one scrape: every running or suspended guest's cpu,
 * NIC and disk counters, read through the configured metrics stages in one
 * sweep per stage (bounded parallel calls; the libvirt backend folds
 * concurrent calls into one bulk `domstats`), under a deadline. A stage
 * that has not answered for some guests by the deadline is reported as
 * late in the scrape instead of holding it; its late answers are dropped.
 */
import PQueue from 'p-queue';
import { Counter, Gauge, type Registry } from './prom-client-classes.js';
import type { GuestCpuMetrics, GuestDiskMetrics, GuestNicMetrics, Guest } from '../contract/wire-types.js';
import type { GuestRegistry } from '../guests/guest-registry.js';
import type { ActionRunner } from '../jobs/action-runner.js';
import type { MetricsAction } from '../jobs/actions.js';

export interface SweepOptions {
  deadlineMs: number;
  /** Metrics stage calls in flight at once, per stage. */
  concurrency: number;
  /** Guest metadata keys exported as labels of hyperkern_guest_info. */
  guestLabels: string[];
}

const SWEPT_STATES = new Set(['running', 'suspended']);
const KINDS = { cpu: 'cpuMetrics', nic: 'nicMetrics', disk: 'diskMetrics' } as const satisfies Record<string, MetricsAction>;
type Kind = keyof typeof KINDS;

const NIC_FIELDS = {
  rx_bytes: ['receive_bytes', 'Bytes received'],
  rx_packets: ['receive_packets', 'Packets received'],
  rx_errors: ['receive_errors', 'Receive errors'],
  rx_drops: ['receive_drops', 'Received packets dropped'],
  tx_bytes: ['transmit_bytes', 'Bytes sent'],
  tx_packets: ['transmit_packets', 'Packets sent'],
  tx_errors: ['transmit_errors', 'Transmit errors'],
  tx_drops: ['transmit_drops', 'Packets to send dropped'],
} as const satisfies Partial<Record<keyof GuestNicMetrics, readonly [string, string]>>;

const DISK_FIELDS = {
  read_ops: ['read_requests', 'Read requests completed'],
  read_bytes: ['read_bytes', 'Bytes read'],
  read_time: ['read_seconds', 'Time spent reading, seconds'],
  write_ops: ['write_requests', 'Write requests completed'],
  write_bytes: ['written_bytes', 'Bytes written'],
  write_time: ['write_seconds', 'Time spent writing, seconds'],
  flush_ops: ['flush_requests', 'Flush requests completed'],
  flush_time: ['flush_seconds', 'Time spent flushing, seconds'],
} as const satisfies Partial<Record<keyof GuestDiskMetrics, readonly [string, string]>>;

/** A metadata key as a Prometheus label name. */
export function labelName(key: string): string {
  const name = key.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(name) ? name : `_${name}`;
}

export class GuestSweep {
  private readonly cpu: Counter<string>;
  private readonly vcpu: Counter<string>;
  private readonly nic = new Map<string, Counter<string>>();
  private readonly disk = new Map<string, Counter<string>>();
  private readonly state: Gauge<string>;
  private readonly vcpus: Gauge<string>;
  private readonly memory: Gauge<string>;
  private readonly info: Gauge<string>;
  private readonly sweepSeconds: Gauge<string>;
  private readonly late: Gauge<string>;
  private readonly failed: Gauge<string>;
  private inFlight?: Promise<void>;
  private readonly infoLabels: Array<[string, string]>;

  constructor(
    registry: Registry,
    private readonly guests: GuestRegistry,
    private readonly runner: ActionRunner,
    private readonly options: SweepOptions,
  ) {
    const registers = [registry];
    this.cpu = new Counter({ name: 'hyperkern_guest_cpu_seconds_total', help: 'CPU time of each vCPU (cpu_time of GET /guests/{id}/metrics/cpu)', labelNames: ['guest', 'vcpu'], registers });
    this.vcpu = new Counter({ name: 'hyperkern_guest_vcpu_seconds_total', help: 'Time each vCPU ran guest code (vcpu_time)', labelNames: ['guest', 'vcpu'], registers });
    for (const [field, [name, help]] of Object.entries(NIC_FIELDS)) {
      this.nic.set(field, new Counter({ name: `hyperkern_guest_nic_${name}_total`, help: `${help} by the guest NIC`, labelNames: ['guest', 'device'], registers }));
    }
    for (const [field, [name, help]] of Object.entries(DISK_FIELDS)) {
      this.disk.set(field, new Counter({ name: `hyperkern_guest_disk_${name}_total`, help: `${help} by the guest disk`, labelNames: ['guest', 'device'], registers }));
    }
    this.state = new Gauge({ name: 'hyperkern_guest_state', help: '1 for the state the guest is in', labelNames: ['guest', 'state'], registers });
    this.vcpus = new Gauge({ name: 'hyperkern_guest_vcpus', help: 'Configured vCPUs', labelNames: ['guest'], registers });
    this.memory = new Gauge({ name: 'hyperkern_guest_memory_bytes', help: 'Configured memory in bytes', labelNames: ['guest'], registers });
    this.infoLabels = options.guestLabels.map((key) => [key, labelName(key)]);
    this.info = new Gauge({ name: 'hyperkern_guest_info', help: 'Always 1; the guest metadata keys in metrics.guestLabels as labels', labelNames: ['guest', ...this.infoLabels.map(([, l]) => l)], registers });
    this.sweepSeconds = new Gauge({ name: 'hyperkern_metrics_sweep_seconds', help: 'How long this scrape waited for each metrics stage', labelNames: ['kind', 'stage'], registers });
    this.late = new Gauge({ name: 'hyperkern_metrics_sweep_late_guests', help: 'Guests whose metrics stage had not answered by the scrape deadline (their series are missing)', labelNames: ['kind', 'stage'], registers });
    this.failed = new Gauge({ name: 'hyperkern_metrics_sweep_failed_guests', help: 'Guests whose metrics stage failed in this scrape', labelNames: ['kind', 'stage'], registers });
  }

  /** One sweep; scrapes arriving meanwhile share it. */
  run(): Promise<void> {
    this.inFlight ??= this.sweep().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async sweep(): Promise<void> {
    const guests = this.guests.all();
    const swept = guests.filter((g) => SWEPT_STATES.has(g.state));
    const kinds = (Object.keys(KINDS) as Kind[]).filter((k) => this.runner.metricsStage(KINDS[k]) !== undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.deadlineMs)));
    const outcomes = await Promise.all(kinds.map((kind) => this.sweepKind(kind, swept, deadline)));
    clearTimeout(timer);

    // Applied only now, so answers arriving after the deadline never land in a later scrape.
    for (const metric of [this.cpu, this.vcpu, ...this.nic.values(), ...this.disk.values(), this.state, this.vcpus, this.memory, this.info, this.sweepSeconds, this.late, this.failed]) metric.reset();
    for (const guest of guests) this.describe(guest);
    for (const outcome of outcomes) {
      const labels = { kind: outcome.kind, stage: outcome.stage };
      this.sweepSeconds.set(labels, outcome.seconds);
      this.late.set(labels, outcome.late);
      this.failed.set(labels, outcome.failed);
      for (const [guestId, value] of outcome.results) this.apply(outcome.kind, guestId, value);
    }
  }

  private async sweepKind(kind: Kind, guests: Guest[], deadline: Promise<void>) {
    const stage = this.runner.metricsStage(KINDS[kind])!;
    const started = performance.now();
    const results = new Map<string, unknown>();
    let failed = 0;
    let open = true;
    const queue = new PQueue({ concurrency: this.options.concurrency });
    const all = queue.addAll(
      guests.map((guest) => async () => {
        try {
          // The guest itself, from the sweep's one listing: by id, each kind would parse it again and push the jobs' guests out of the registry's cache.
          const value = await this.runner.metricsOf(KINDS[kind], guest, {});
          if (open) results.set(guest.id, value);
        } catch {
          if (open) failed++;
        }
      }),
    );
    await Promise.race([all, deadline]);
    open = false;
    queue.clear();
    return { kind, stage, results, failed, late: guests.length - results.size - failed, seconds: (performance.now() - started) / 1000 };
  }

  private describe(guest: Guest): void {
    this.state.set({ guest: guest.id, state: guest.state || 'unknown' }, 1);
    this.vcpus.set({ guest: guest.id }, guest.cpu);
    this.memory.set({ guest: guest.id }, guest.memory * 1024 * 1024);
    const labels: Record<string, string> = { guest: guest.id };
    for (const [key, label] of this.infoLabels) labels[label] = guest.metadata?.[key] ?? '';
    this.info.set(labels, 1);
  }

  private apply(kind: Kind, guest: string, value: unknown): void {
    if (kind === 'cpu' && Array.isArray(value)) {
      (value as GuestCpuMetrics[]).forEach((cpu, i) => {
        if (isCount(cpu?.cpu_time)) this.cpu.inc({ guest, vcpu: String(i) }, cpu.cpu_time);
        if (isCount(cpu?.vcpu_time)) this.vcpu.inc({ guest, vcpu: String(i) }, cpu.vcpu_time);
      });
      return;
    }
    const fields = kind === 'nic' ? this.nic : this.disk;
    for (const [device, counters] of Object.entries((value ?? {}) as Record<string, Record<string, unknown>>)) {
      for (const [field, counter] of fields) {
        const n = counters?.[field];
        // Devices the backend cannot count (user-mode NICs) carry no numbers.
        if (isCount(n)) counter.inc({ guest, device }, n);
      }
    }
  }
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0;
}
