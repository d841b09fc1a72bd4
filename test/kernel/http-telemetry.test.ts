/**
 * HttpTelemetry records requests into plain numbers and hands them to
 * prom-client at scrape time: the text a scrape gets must be what
 * prom-client's own Counter and Histogram give for the same requests.
 */
import { expect } from 'chai';
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import * as agentClasses from '../../core/metrics/prom-client-classes.js';
import { HttpTelemetry } from '../../core/metrics/http-telemetry.js';

// prom-client's index as require() gives it, read when the tests run. An ESM
// import of this CommonJS module is a snapshot of its exports taken when
// first imported, and in a full mocha run that happened while the index was
// still loading (its named exports all undefined: HTTP telemetry failed
// after test/kernel/guest-registry, alone it passed).
const promClient = createRequire(import.meta.url)('prom-client') as typeof PromClient;
const { Counter, Histogram, Registry } = promClient;

const BOUNDS = [0.001, 0.01, 0.1, 1];
const REQUESTS: Array<[string, string, number, number]> = [
  ['/guests/:id', 'GET', 200, 0.0004],
  ['/guests/:id', 'GET', 200, 0.001], // on a bound: counted in that bucket (le)
  ['/guests/:id', 'GET', 404, 0.02],
  ['/guests', 'POST', 202, 0.5],
  ['/guests', 'POST', 400, 7], // above every bound: +Inf only
  ['unmatched', 'GET', 404, 0.00001],
];

describe('HTTP telemetry', () => {
  it("takes prom-client's own classes from their files (not the index, which loads what the agent never uses)", () => {
    for (const name of ['Registry', 'Counter', 'Gauge', 'Histogram'] as const) {
      expect(agentClasses[name], name).to.be.a('function').and.equal(promClient[name]);
    }
  });

  it("exposes exactly what prom-client's Counter and Histogram would for the same requests", async () => {
    const ours = new Registry();
    const telemetry = new HttpTelemetry(ours, BOUNDS);
    const theirs = new Registry();
    const counter = new Counter({ name: 'hyperkern_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status', labelNames: ['route', 'method', 'status'], registers: [theirs] });
    const histogram = new Histogram({ name: 'hyperkern_http_request_duration_seconds', help: 'HTTP request latency by route pattern and method', labelNames: ['route', 'method'], buckets: BOUNDS, registers: [theirs] });
    for (const [route, method, status, seconds] of REQUESTS) {
      telemetry.record(route, method, status, seconds);
      counter.inc({ route, method, status: String(status) });
      histogram.observe({ route, method }, seconds);
    }
    const sorted = (text: string) => text.split('\n').filter(Boolean).sort();
    expect(sorted(await ours.metrics())).to.deep.equal(sorted(await theirs.metrics()));
    // Scraping twice reports the same totals (counts are kept, not drained).
    expect(sorted(await ours.metrics())).to.deep.equal(sorted(await theirs.metrics()));
    expect(await ours.metrics()).to.include('hyperkern_http_requests_total{route="/guests/:id",method="GET",status="200"} 2');
  });
});
