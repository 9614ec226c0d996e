import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Every series keygate exposes (SPEC §9), on a registry of its own. Labels stay low-cardinality: never a key,
// and a tenant only when `metrics.tenantLabel` is on.

// Auth decisions take microseconds on a cache hit and milliseconds on a store read.
const authBuckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];
// Requests and upstream calls range from a millisecond to long-running streams.
const requestBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(opts: { tenantLabel: boolean }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const tenant = opts.tenantLabel ? (['tenant'] as const) : ([] as const);
  const m = {
    registry,
    requests: new Counter({
      name: 'keygate_requests_total',
      help: 'Requests answered, by listener, method and status class.',
      labelNames: ['listener', 'method', 'status_class', ...tenant],
      registers: [registry],
    }),
    authDecisions: new Counter({
      name: 'keygate_auth_decisions_total',
      help: 'Authentication and authorisation outcomes: "allowed" or the error code.',
      labelNames: ['decision', ...tenant],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'keygate_request_duration_seconds',
      help: 'Time from request start to response end, by listener.',
      labelNames: ['listener'],
      buckets: requestBuckets,
      registers: [registry],
    }),
    authDuration: new Histogram({
      name: 'keygate_auth_duration_seconds',
      help: 'Time spent deciding whether a request may pass.',
      buckets: authBuckets,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'keygate_upstream_duration_seconds',
      help: 'Time from forwarding a request to the upstream response headers.',
      buckets: requestBuckets,
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: 'keygate_key_cache_lookups_total',
      help: 'Key cache lookups: hit, miss, negative (known-unknown key), stale (served during a store outage).',
      labelNames: ['result'],
      registers: [registry],
    }),
    cacheEntries: new Gauge({ name: 'keygate_key_cache_entries', help: 'Entries in the key cache.', registers: [registry] }),
    storeUp: new Gauge({ name: 'keygate_store_up', help: '1 when the key store answered its last health check.', registers: [registry] }),
    storeErrors: new Counter({
      name: 'keygate_store_errors_total',
      help: 'Failed key store calls, by operation.',
      labelNames: ['op'],
      registers: [registry],
    }),
    invalidations: new Counter({
      name: 'keygate_invalidations_total',
      help: 'Cache invalidation messages received (key and tenant mutations anywhere in the fleet).',
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'keygate_rate_limited_total',
      help: 'Requests refused by a limit, by scope.',
      labelNames: ['scope'],
      registers: [registry],
    }),
    websockets: new Gauge({ name: 'keygate_websocket_connections', help: 'Open proxied WebSocket sessions.', registers: [registry] }),
    upstreamErrors: new Counter({
      name: 'keygate_upstream_errors_total',
      help: 'Upstream failures, by kind (refused, reset, timeout, other).',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
  // Label children bound once per combination: `inc()` on a bound child skips the label hashing.
  const requestChildren = new Map<string, ReturnType<typeof m.requests.labels>>();
  return {
    ...m,
    countRequest(listener: 'public' | 'internal', method: string, status: number): void {
      const statusClass = `${Math.floor(status / 100)}xx`;
      const id = `${listener} ${method} ${statusClass}`;
      let child = requestChildren.get(id);
      if (!child) {
        if (requestChildren.size > 200) requestChildren.clear(); // arbitrary methods cannot grow it forever
        requestChildren.set(id, (child = m.requests.labels(listener, method, statusClass)));
      }
      child.inc();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
