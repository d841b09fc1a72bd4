/** GET /metrics: Prometheus text exposition (docs/metrics.md). */
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { GuestSweep } from '../metrics/guest-sweep.js';
import { defineRoute } from './route.js';

export interface MetricsRouteDeps {
  metrics: AgentMetrics;
  sweep: GuestSweep;
}

const getPrometheusMetrics = defineRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getPrometheusMetrics',
  tag: 'metrics',
  summary: 'Prometheus metrics of the guests and the agent (docs/metrics.md)',
  description:
    'Prometheus text exposition 0.0.4. One sweep of the metrics stages per scrape, bounded by metrics.scrapeDeadlineSeconds; guests a stage had not answered for are counted in hyperkern_metrics_sweep_late_guests.',
  responses: { 200: { description: 'The exposition', contentType: 'text/plain' } },
  handle: (deps: MetricsRouteDeps) => async (ctx) => {
    await deps.sweep.run();
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  },
});

export const METRICS_ROUTES = [getPrometheusMetrics];
