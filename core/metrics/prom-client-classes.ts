/**
 * prom-client's Registry, Counter, Gauge and Histogram, loaded from their own
 * files. The package's index also loads its default process metrics (which
 * pull in 63 files of @opentelemetry/api), the Pushgateway (http, https) and
 * the cluster aggregator: 28 ms of the agent's start-up here against 3 ms
 * for these four, and the agent uses none of the rest. They are the very
 * classes the index exports (test/kernel/http-telemetry.test.ts checks it),
 * typed by the package's own declarations.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = require('prom-client/lib/registry');
export const Counter: typeof PromClient.Counter = require('prom-client/lib/counter');
export const Gauge: typeof PromClient.Gauge = require('prom-client/lib/gauge');
export const Histogram: typeof PromClient.Histogram = require('prom-client/lib/histogram');
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
