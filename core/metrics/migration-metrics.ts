/**
 * Moves of guests between agents on /metrics (docs/metrics.md): how many
 * ended and how (by this agent's role in them), the bytes the source sent,
 * the guest's downtime as the hypervisor reported it, and how long moves
 * took. Counted from the kernel's boot (the migration hooks call it) and
 * exposed once the API's registry exists.
 */
import { Counter, Histogram, type Registry } from './prom-client-classes.js';

export type MigrationOutcome = 'complete' | 'error' | 'cancelled';
export type MigrationRole = 'source' | 'target';

/** Seconds: a live move's pause is milliseconds (the target is <= 0.3 s), a stalled one seconds. */
const DOWNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10];
/** Seconds: a small guest moves in seconds, a large disk in many minutes. */
const DURATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export class MigrationMetrics {
  private readonly moves = new Counter<'role' | 'outcome'>({ name: 'hyperkern_migrations_total', help: 'Moves of guests to or from this agent that ended, by role (source, target) and outcome (complete, error, cancelled)', labelNames: ['role', 'outcome'], registers: [] });
  private readonly bytes = new Counter<'kind'>({ name: 'hyperkern_migration_bytes_sent_total', help: 'Bytes this agent sent as the source of moves, by kind (disk, memory)', labelNames: ['kind'], registers: [] });
  private readonly downtime = new Histogram({ name: 'hyperkern_migration_downtime_seconds', help: "Live moves' guest downtime as the hypervisor reported it (source side)", buckets: DOWNTIME_BUCKETS, registers: [] });
  private readonly duration = new Histogram<'mode'>({ name: 'hyperkern_migration_duration_seconds', help: 'Completed moves from the source job start to the guest running on the target, by mode (live, cold)', labelNames: ['mode'], buckets: DURATION_BUCKETS, registers: [] });

  constructor() {
    // Every series from the start at 0, so a rate() sees the first move.
    for (const role of ['source', 'target'] as const) for (const outcome of ['complete', 'error', 'cancelled'] as const) this.moves.inc({ role, outcome }, 0);
    for (const kind of ['disk', 'memory']) this.bytes.inc({ kind }, 0);
  }

  /** Adds them to the registry /metrics answers from. */
  registerIn(registry: Registry): void {
    registry.registerMetric(this.moves);
    registry.registerMetric(this.bytes);
    registry.registerMetric(this.downtime);
    registry.registerMetric(this.duration);
  }

  ended(role: MigrationRole, outcome: MigrationOutcome): void {
    this.moves.inc({ role, outcome });
  }

  /** A source's completed move: what it sent, its downtime (live) and its length. */
  completed(facts: { live: boolean; seconds: number; diskBytes: number; memoryBytes: number; downtimeMs?: number }): void {
    this.ended('source', 'complete');
    this.bytes.inc({ kind: 'disk' }, facts.diskBytes);
    this.bytes.inc({ kind: 'memory' }, facts.memoryBytes);
    if (facts.downtimeMs !== undefined) this.downtime.observe(facts.downtimeMs / 1000);
    this.duration.observe({ mode: facts.live ? 'live' : 'cold' }, facts.seconds);
  }
}
