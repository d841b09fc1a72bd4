/**
 * core/metrics: the agent's Prometheus metrics and the per-scrape guest sweep.
 * May import: contract, guests, jobs.
 *
 * The agent's own Prometheus metrics (prom-client, one registry per
 * kernel): HTTP requests, jobs, stages, queue depth, plugin health and
 * restarts, events retained. Guest metrics are filled per scrape by the
 * GuestSweep into the same registry (docs/metrics.md).
 */
import type { Context } from 'koa';
import { Counter, Gauge, Histogram, Registry } from './prom-client-classes.js';
import { HttpTelemetry } from './http-telemetry.js';
import type { PluginHealth } from '../contract/plugin-api.js';

/** Seconds: HTTP answers are fast, jobs and stages can take minutes. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface AgentGauges {
  queue: () => { queued: number; running: number };
  plugins: () => Promise<Record<string, PluginHealth>>;
  eventsRetained: () => Promise<number>;
  latestEventId: () => number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly httpTelemetry: HttpTelemetry;
  private readonly jobs: Counter<'action' | 'outcome'>;
  private readonly jobDuration: Histogram<'action' | 'outcome'>;
  private readonly stageDuration: Histogram<'stage'>;
  private readonly stageFailures: Counter<'stage'>;

  constructor(gauges: AgentGauges) {
    const registers = [this.registry];
    // No prom-client default metrics: some (nodejs_active_handles_total, a
    // gauge named like a counter) fail `promtool check metrics`.
    this.httpTelemetry = new HttpTelemetry(this.registry, HTTP_BUCKETS);
    this.jobs = new Counter({ name: 'hyperkern_jobs_total', help: 'Jobs ended, by action and outcome (complete, error, cancelled)', labelNames: ['action', 'outcome'], registers });
    this.jobDuration = new Histogram({ name: 'hyperkern_job_duration_seconds', help: 'Job run time from start to end, by action and outcome', labelNames: ['action', 'outcome'], buckets: JOB_BUCKETS, registers });
    this.stageDuration = new Histogram({ name: 'hyperkern_stage_duration_seconds', help: 'Stage call duration by stage', labelNames: ['stage'], buckets: JOB_BUCKETS, registers });
    this.stageFailures = new Counter({ name: 'hyperkern_stage_failures_total', help: 'Stage calls that failed or timed out, by stage', labelNames: ['stage'], registers });
    new Gauge({
      name: 'hyperkern_jobs_queued',
      help: 'Jobs waiting in guest queues',
      registers,
      collect() {
        this.set(gauges.queue().queued);
      },
    });
    new Gauge({
      name: 'hyperkern_jobs_running',
      help: 'Jobs running now',
      registers,
      collect() {
        this.set(gauges.queue().running);
      },
    });
    // One health poll per scrape feeds both plugin metrics.
    let health: Promise<Record<string, PluginHealth>> | undefined;
    const pluginHealth = () => (health ??= gauges.plugins().finally(() => setTimeout(() => (health = undefined), 0)));
    new Gauge({
      name: 'hyperkern_plugin_healthy',
      help: '1 when the plugin reports itself healthy',
      labelNames: ['plugin'],
      registers,
      async collect() {
        this.reset();
        for (const [plugin, h] of Object.entries(await pluginHealth())) this.set({ plugin }, h.healthy ? 1 : 0);
      },
    });
    new Counter({
      name: 'hyperkern_plugin_restarts_total',
      help: 'Restarts of isolated plugin child processes',
      labelNames: ['plugin'],
      registers,
      async collect() {
        this.reset();
        for (const [plugin, h] of Object.entries(await pluginHealth())) {
          const restarts = h.details?.restarts;
          if (typeof restarts === 'number') this.inc({ plugin }, restarts);
        }
      },
    });
    new Gauge({
      name: 'hyperkern_events_retained',
      help: 'Events held in the state file for replay (bounded by events.retention)',
      registers,
      async collect() {
        this.set(await gauges.eventsRetained());
      },
    });
    new Gauge({
      name: 'hyperkern_events_latest_id',
      help: 'Id of the newest committed event',
      registers,
      collect() {
        this.set(gauges.latestEventId());
      },
    });
  }

  /**
   * Counts and times an answered request by its route pattern (never the
   * raw path): called by the edge (core/http/edge.ts) once the request's
   * status is final, errors included.
   */
  httpObserver(): (ctx: Context, seconds: number) => void {
    const telemetry = this.httpTelemetry;
    return (ctx, seconds) => {
      // SSE streams are long-lived: counted when they open.
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      telemetry.record(route, ctx.method, ctx.status, seconds);
    };
  }

  stage(stage: string, seconds: number, failed: boolean): void {
    this.stageDuration.observe({ stage }, seconds);
    if (failed) this.stageFailures.inc({ stage });
  }

  job(action: string, outcome: 'complete' | 'error' | 'cancelled', seconds: number): void {
    this.jobs.inc({ action, outcome });
    this.jobDuration.observe({ action, outcome }, seconds);
  }
}
