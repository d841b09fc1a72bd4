/** GET /metrics: Prometheus text exposition (docs/metrics.md). */
import type Router from '@koa/router';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { GuestSweep } from '../metrics/guest-sweep.js';

export interface MetricsRouteDeps {
  metrics: AgentMetrics;
  sweep: GuestSweep;
}

export function metricsRoutes(router: Router, deps: MetricsRouteDeps): void {
  router.get('/metrics', async (ctx) => {
    await deps.sweep.run();
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
}
