import { createRequire } from 'node:module';
import type * as prom from 'prom-client';

// prom-client's parts keygate uses, from their own files: the package's entry point also loads its Pushgateway,
// its Summary and its cluster aggregator, about 0.3 MB of heap that a keygate would hold for as long as it runs
// (bench/README.md, "Memory"). They are the same classes the entry point exports (one
// module, one copy: the AggregatorRegistry that workers.ts takes from the entry point extends this Registry); a
// release that moves them fails at start, not silently.
const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry.js') as typeof prom.Registry;
export type Registry<T extends prom.RegistryContentType = prom.PrometheusContentType> = prom.Registry<T>;
export const Counter = load('prom-client/lib/counter.js') as typeof prom.Counter;
export type Counter<T extends string = string> = prom.Counter<T>;
export const Gauge = load('prom-client/lib/gauge.js') as typeof prom.Gauge;
export type Gauge<T extends string = string> = prom.Gauge<T>;
export const Histogram = load('prom-client/lib/histogram.js') as typeof prom.Histogram;
export type Histogram<T extends string = string> = prom.Histogram<T>;
export const collectDefaultMetrics = load('prom-client/lib/defaultMetrics.js') as typeof prom.collectDefaultMetrics;
export type { CounterConfiguration, HistogramConfiguration, Metric, OpenMetricsContentType } from 'prom-client';
