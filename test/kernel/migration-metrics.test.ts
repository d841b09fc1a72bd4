/** The migration counters on /metrics, as Prometheus reads them: every series from 0, then each move counted once. */
import { expect } from 'chai';
import { MigrationMetrics } from '../../core/metrics/migration-metrics.js';
import { Registry } from '../../core/metrics/prom-client-classes.js';

describe('MigrationMetrics', () => {
  it('exposes moves by role and outcome, bytes sent by kind, downtime and duration', async () => {
    const registry = new Registry();
    const metrics = new MigrationMetrics();
    metrics.registerIn(registry);
    const before = await registry.metrics();
    expect(before).to.contain('hyperkern_migrations_total{role="source",outcome="complete"} 0');
    expect(before).to.contain('hyperkern_migration_bytes_sent_total{kind="memory"} 0');

    metrics.completed({ live: true, seconds: 12.5, diskBytes: 100 * 1048576, memoryBytes: 256 * 1048576, downtimeMs: 42 });
    metrics.completed({ live: false, seconds: 4, diskBytes: 1048576, memoryBytes: 0 });
    metrics.ended('source', 'cancelled');
    metrics.ended('target', 'complete');
    const text = await registry.metrics();
    expect(text).to.contain('hyperkern_migrations_total{role="source",outcome="complete"} 2');
    expect(text).to.contain('hyperkern_migrations_total{role="source",outcome="cancelled"} 1');
    expect(text).to.contain('hyperkern_migrations_total{role="target",outcome="complete"} 1');
    expect(text).to.contain(`hyperkern_migration_bytes_sent_total{kind="disk"} ${101 * 1048576}`);
    expect(text).to.contain(`hyperkern_migration_bytes_sent_total{kind="memory"} ${256 * 1048576}`);
    // One live move's downtime: 42 ms falls in the 0.05 s bucket; a cold move has none.
    expect(text).to.contain('hyperkern_migration_downtime_seconds_bucket{le="0.025"} 0');
    expect(text).to.contain('hyperkern_migration_downtime_seconds_bucket{le="0.05"} 1');
    expect(text).to.contain('hyperkern_migration_downtime_seconds_count 1');
    expect(text).to.contain('hyperkern_migration_duration_seconds_count{mode="live"} 1');
    expect(text).to.contain('hyperkern_migration_duration_seconds_sum{mode="cold"} 4');
  });
});
