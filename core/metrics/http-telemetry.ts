/**
 * Per-request HTTP telemetry: hyperkern_http_requests_total (by route
 * pattern, method and status) and hyperkern_http_request_duration_seconds
 * (a histogram by route pattern and method).
 *
 * A request is recorded into plain numbers: two Map lookups, a bucket search
 * and a few additions. prom-client reads them when it is scraped. Its own
 * Counter#inc and Histogram#observe validate and hash the label set on every
 * call, children from labels() included, which cost more per request than
 * all the rest the agent adds to GET /guests/{id}. The exposition stays
 * prom-client's: the counter is a prom-client Counter filled at collect
 * time, and the histogram is a metric object in the shape prom-client's
 * own histograms return, formatted by the registry like any other.
 */
import { Counter, type Registry } from './prom-client-classes.js';

interface RouteSeries {
  route: string;
  method: string;
  /** Answers by status code, since start. */
  byStatus: Map<number, number>;
  /** Observations per bucket (not cumulative); the last slot is above every bound (+Inf). */
  buckets: number[];
  sum: number;
  count: number;
}

export class HttpTelemetry {
  /** route -> method -> series. */
  private readonly series = new Map<string, Map<string, RouteSeries>>();

  constructor(
    registry: Registry,
    private readonly bounds: readonly number[],
  ) {
    const telemetry = this;
    new Counter({
      name: 'hyperkern_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of telemetry.all()) for (const [status, n] of s.byStatus) this.inc({ route: s.route, method: s.method, status: String(status) }, n);
      },
    });
    const name = 'hyperkern_http_request_duration_seconds';
    const help = 'HTTP request latency by route pattern and method';
    registry.registerMetric({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: this.histogramValues(name) }),
      reset: () => undefined,
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** One answered request: its route pattern ("unmatched" when none), method, status and duration. */
  record(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.series.get(route);
    if (!byMethod) this.series.set(route, (byMethod = new Map()));
    let s = byMethod.get(method);
    if (!s) byMethod.set(method, (s = { route, method, byStatus: new Map(), buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    s.byStatus.set(status, (s.byStatus.get(status) ?? 0) + 1);
    let bucket = 0;
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]) bucket++;
    s.buckets[bucket]++;
    s.sum += seconds;
    s.count++;
  }

  private *all(): Iterable<RouteSeries> {
    for (const byMethod of this.series.values()) yield* byMethod.values();
  }

  /** The values prom-client's Histogram#get returns: cumulative buckets, +Inf, sum and count per series. */
  private histogramValues(name: string) {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.all()) {
      const own = { route: s.route, method: s.method };
      let cumulative = 0;
      for (const [i, bound] of this.bounds.entries()) {
        cumulative += s.buckets[i];
        values.push({ labels: { le: bound, ...own }, value: cumulative, metricName: `${name}_bucket` });
      }
      values.push({ labels: { le: '+Inf', ...own }, value: s.count, metricName: `${name}_bucket` });
      values.push({ labels: own, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: own, value: s.count, metricName: `${name}_count` });
    }
    return values;
  }
}
