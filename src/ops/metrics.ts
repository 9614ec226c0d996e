import { Counter, Gauge, Registry, collectDefaultMetrics } from './prom-client.ts';
import { HotCounter, HotHistogram, type HotCounterChild } from './hot-metrics.ts';

// Every series keygate exposes, on a registry of its own. Labels stay low-cardinality: never a key,
// and a tenant only when `metrics.tenantLabel` is on. Series updated on every proxied request are Hot* ones
// (hot-metrics.ts): bound once, counted into plain numbers, handed to prom-client at scrape time.

// Auth decisions take microseconds on a cache hit and milliseconds on a store read.
const authBuckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];
// Requests and upstream calls range from a millisecond to long-running streams.
const requestBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Where an authentication was decided: `public` the proxy, `management` the self-service API's gate (both on
 * the public listener), `internal` the admin API's token check, `authz` the authorizer listener's checks.
 */
/**
 * The `method` label's values: the methods of RFC 9110 §9 and PATCH (RFC 5789); any other token counts as `OTHER`.
 * A request's method is the client's to choose (the authorizer reads it from a gateway's header, which passes any
 * token), so as a label value it would make one series per token sent.
 */
export const METHOD_LABELS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const methodLabel = (method: string): string => (METHOD_LABELS.has(method) ? method : 'OTHER');

export type DecisionListener = 'public' | 'management' | 'internal' | 'authz';

// prom-client's process defaults include these three gauges whose names end in `_total`, which Prometheus
// reserves for counters (`promtool check metrics` fails on them). Each is the sum of the `nodejs_active_*{type}`
// gauge that is kept beside it, so nothing is lost: `sum(nodejs_active_handles)` gives the same number.
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetrics(opts: { tenantLabel: boolean; logLinesDropped?: () => number; storeUp?: () => Promise<boolean>; onDecision?: (decision: string, listener: DecisionListener) => void }) {
  const onDecision = opts.onDecision ?? (() => {});
  const registry = new Registry();
  /** Process state whose size is exposed (watchState): a fixed set of names, each read at scrape time. */
  const watched = new Map<string, () => number>();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  const tenant = opts.tenantLabel ? (['tenant'] as const) : ([] as const);
  let droppedSeen = 0;
  const m = {
    registry,
    requests: new HotCounter({
      name: 'keygate_requests_total',
      help: 'Requests answered, by listener, method (those of RFC 9110 and PATCH; any other is OTHER) and status class.',
      labelNames: ['listener', 'method', 'status_class', ...tenant],
      registers: [registry],
    }),
    authDecisions: new HotCounter({
      name: 'keygate_auth_decisions_total',
      help: 'Authentication and authorisation outcomes: "allowed" or the error code, by listener (public: the proxy; management: /keygate/v1; internal: the admin API).',
      labelNames: ['decision', 'listener', ...tenant],
      registers: [registry],
    }),
    requestDuration: new HotHistogram({
      name: 'keygate_request_duration_seconds',
      help: 'Time from request start to response end, by listener.',
      labelNames: ['listener'],
      buckets: requestBuckets,
      registers: [registry],
    }),
    authDuration: new HotHistogram({
      name: 'keygate_auth_duration_seconds',
      help: 'Time spent deciding whether a request may pass.',
      buckets: authBuckets,
      registers: [registry],
    }),
    upstreamDuration: new HotHistogram({
      name: 'keygate_upstream_duration_seconds',
      help: 'Time from forwarding a request to the upstream response headers.',
      buckets: requestBuckets,
      registers: [registry],
    }),
    cacheLookups: new HotCounter({
      name: 'keygate_key_cache_lookups_total',
      help: 'Key cache lookups: hit, miss, negative (known-unknown key), stale (served during a store outage).',
      labelNames: ['result'],
      registers: [registry],
    }),
    cacheEntries: new Gauge({ name: 'keygate_key_cache_entries', help: 'Entries in the key cache.', registers: [registry] }),
    storeUp: new Gauge({
      name: 'keygate_store_up',
      help: '1 when the key store answers (checked at every scrape, and by /readyz).',
      registers: [registry],
      // With several worker processes, 1 only when every worker's store answers.
      aggregator: 'min',
      // Asked at the scrape itself, so the first scrape is true too (not 0 until something called /readyz).
      async collect(this: Gauge) {
        if (opts.storeUp) this.set((await opts.storeUp()) ? 1 : 0);
      },
    }),
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
      help: 'Requests and WebSocket upgrades refused by a limit or a monthly quota, by scope.',
      labelNames: ['scope'],
      registers: [registry],
    }),
    websockets: new Gauge({ name: 'keygate_websocket_connections', help: 'Open proxied WebSocket sessions.', registers: [registry] }),
    sessionSeconds: new Counter({
      name: 'keygate_session_seconds_total',
      help: 'Time of proxied WebSocket sessions, counted as usage is (at every usage flush and when a session ends).',
      registers: [registry],
    }),
    logLinesDropped: new Counter({
      name: 'keygate_log_lines_dropped_total',
      help: 'Log lines dropped because standard output could not keep up (the writer holds at most 16 Mi characters).',
      registers: [registry],
      collect(this: Counter) {
        const now = opts.logLinesDropped?.() ?? 0;
        if (now > droppedSeen) this.inc(now - droppedSeen);
        droppedSeen = now;
      },
    }),
    webhookJobsDropped: new Counter({
      name: 'keygate_webhook_jobs_dropped_total',
      help: 'Webhook delivery jobs dropped at a cap (pending_tenant_cap, pending_endpoint_cap), dead letters removed at a cap (dead_tenant_cap, dead_endpoint_cap) or expired (dead_expired).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    stateEntries: new Gauge({
      name: 'keygate_state_entries',
      help: 'Entries held in process, by table (docs/state.md gives each bound): cache_untrusted, rate_limit_specs, rate_limit_tenant_windows, month_counts, failure_blocks, failure_counts, usage_rows, usage_carried, usage_sessions, session_slots.',
      labelNames: ['state'],
      registers: [registry],
      collect(this: Gauge) {
        for (const [state, size] of watched) this.set({ state }, size());
      },
    }),
    upstreamErrors: new Counter({
      name: 'keygate_upstream_errors_total',
      help: 'Upstream failures, by kind (refused, reset, timeout, invalid, overloaded, other).',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
  // Children bound on first use. Without a tenant label they are found on later requests without building a
  // string or a closure: keygate_requests_total by listener, method, then status class. With it, HotCounter's
  // own lookup by label values serves (one string per request, as the tenant is a label value). Every label
  // value comes from a closed set (methods: METHOD_LABELS; decisions: "allowed" and the error codes; tenants:
  // verified tenant ids only), so these maps and the exposition are bounded by those sets.
  const requestChildren = {
    public: new Map<string, Array<HotCounterChild | undefined>>(),
    internal: new Map<string, Array<HotCounterChild | undefined>>(),
    authz: new Map<string, Array<HotCounterChild | undefined>>(),
  };
  const decisionChildren = {
    public: new Map<string, HotCounterChild>(),
    management: new Map<string, HotCounterChild>(),
    internal: new Map<string, HotCounterChild>(),
    authz: new Map<string, HotCounterChild>(),
  };
  /** Bounded: arbitrary methods cannot grow the maps forever. */
  const remember = <V>(map: Map<string, V>, id: string, value: V): V => {
    if (map.size > 10_000) map.clear();
    map.set(id, value);
    return value;
  };
  return {
    ...m,
    /** Counts an answered request; `tenantId` becomes a label only with `metrics.tenantLabel`. */
    countRequest(listener: 'public' | 'internal' | 'authz', method: string, status: number, tenantId: string | null = null): void {
      const c = Math.floor(status / 100);
      const label = methodLabel(method);
      if (opts.tenantLabel) return m.requests.child(listener, label, `${c}xx`, tenantId ?? '').inc();
      const byClass = requestChildren[listener].get(label) ?? remember(requestChildren[listener], label, []);
      (byClass[c] ??= m.requests.child(listener, label, `${c}xx`)).inc();
    },
    /** Exposes the size of a piece of process state as keygate_state_entries{state}; `state` is a fixed name. */
    watchState(state: string, size: () => number): void {
      watched.set(state, size);
    },
    /** Counts an authentication decision: "allowed" or an error code; the proxy's unless `listener` says otherwise. */
    decision(decision: string, tenantId: string | null = null, listener: DecisionListener = 'public'): void {
      onDecision(decision, listener);
      if (opts.tenantLabel) return m.authDecisions.child(decision, listener, tenantId ?? '').inc();
      const children = decisionChildren[listener];
      (children.get(decision) ?? remember(children, decision, m.authDecisions.child(decision, listener))).inc();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
