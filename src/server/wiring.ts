import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAuthorizer } from '../auth/authorize.ts';
import { createPipeline } from '../auth/pipeline.ts';
import { compilePolicy, type PolicySpec } from '../auth/policy.ts';
import { createTokenReader } from '../auth/session-token.ts';
import { createAuthenticator } from '../auth/verify.ts';
import { createTokenVerifier, randomSigningKey } from '../keys/session-token.ts';
import { MemoryTokenUses, RedisTokenUses } from '../limits/token-uses.ts';
import { KeyCache } from '../cache/key-cache.ts';
import { packageRoot } from '../config/package-root.ts';
import type { Config } from '../config/schema.ts';
import { clientIpOf, compileCidrs } from '../http/client-ip.ts';
import { sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { MemorySessionSlots } from '../limits/sessions.ts';
import { RedisConsoleSessions } from '../console/redis-sessions.ts';
import { MemoryConsoleSessions } from '../console/sessions.ts';
import { Usage } from '../limits/usage.ts';
import { createReadiness } from '../ops/health.ts';
import { createLoggers, throttledWarn, type Logger } from '../ops/logger.ts';
import { DecisionRing } from '../ops/decision-ring.ts';
import { RecentBlocks } from '../limits/recent-blocks.ts';
import { createMetrics } from '../ops/metrics.ts';
import { createProbes } from '../ops/probes.ts';
import { loadTracing, type RedisLike } from '../ops/tracing.ts';
import { openStore } from '../store/index.ts';
import { WebhookOutboxes } from '../webhooks/outbox.ts';
import type { KeyStore } from '../store/types.ts';
import type { ManagementDeps } from './management.ts';
import { wireLimits, wireWebhooks } from './wiring-limits.ts';

// Building keygate's components from the configuration, in the order start-up needs them: first what the
// internal listener answers with (logs, metrics, readiness, the probes and the lazily loaded management APIs),
// then the store and everything on it. Nothing here listens (server/listeners.ts) or stops (server/lifecycle.ts).

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type ManagementApps = { internal: Handler; public: Handler };

/** The console's per-minute decision chart covers the last 3 hours (a fixed ring: 180 × 6 counters). */
const CONSOLE_RING_MINUTES = 180;
/** Blocked addresses the console lists (the most recent; their blocks live in the limiter). */
const RECENT_BLOCKS = 100;

export const version: string = (JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string }).version;

/** What the probes and the management APIs read before the store is open: filled in by `wireStore`. */
interface Late {
  store: KeyStore | null;
  cacheSize: () => number;
  ready: ReturnType<ManagementDeps['ready']>;
}

/** Everything the internal listener needs, built before anything else: no store yet. */
export async function wireCore(config: Config, policySpec?: PolicySpec) {
  const { logger, access, sessionLog, drain: drainLogs, dropped } = createLoggers(config.logging);
  const late: Late = { store: null, cacheSize: () => 0, ready: null };
  // The console's fleet chart: decisions per minute over the last CONSOLE_RING_MINUTES, this process's (ops/decision-ring.ts).
  const ring = new DecisionRing(CONSOLE_RING_MINUTES);
  const metrics = createMetrics({ tenantLabel: config.metrics.tenantLabel, logLinesDropped: dropped, storeUp: () => readiness.storeUp(), onDecision: (d, listener) => listener !== 'internal' && ring.record(d) });
  const blocks = new RecentBlocks(RECENT_BLOCKS);
  // The policy is compiled before anything listens, so a bad file fails start-up at once. Read here only when
  // it was not handed over checked (serve's check reads it, and zod and yaml stay out of this process).
  const policy = compilePolicy(policySpec ?? (await import('../auth/policy-file.ts')).readPolicySpec(config.policy.file));
  let adminToken = config.admin.token;
  let generatedAdminToken: string | null = null;
  if (!adminToken) adminToken = generatedAdminToken = `kg_admin_${randomBytes(24).toString('base64url')}`;
  // OpenTelemetry (docs/tracing.md): the SDK is loaded only when tracing is on. A traceparent is continued from
  // tracing.trustedPeers, by default the proxies and gateways keygate already trusts.
  const tracePeers = config.tracing.trustedPeers ?? [...config.server.trustedProxies, ...config.authz.trustedGateways];
  const tracing = await loadTracing({ config: config.tracing, trustedPeers: tracePeers.length ? compileCidrs(tracePeers) : null, version, upstreamUrl: config.upstream.url, logger });
  const readiness = createReadiness({
    // The embedded store is in this process: up, with no round trip to measure.
    storePing: () => (late.store === null ? null : late.store.kind === 'memory' ? Promise.resolve(0) : late.store.ping()),
    upstreamUrl: config.upstream.url,
    requireStore: config.readiness.requireStore,
    version,
    onStoreStatus: (up) => metrics.storeUp.set(up ? 1 : 0),
  });
  const managementDeps: ManagementDeps = { config, version, adminToken, ring, blocks, metrics, logger, access, readiness, cacheSize: () => late.cacheSize(), ready: () => late.ready };
  const probe = createProbes({ readiness, metrics, logger, cacheSize: () => late.cacheSize() });
  return { logger, access, sessionLog, drainLogs, ring, metrics, blocks, policy, adminToken, generatedAdminToken, tracing, readiness, probe, late, management: lazyManagement(managementDeps, logger) };
}

export type Core = Awaited<ReturnType<typeof wireCore>>;

/**
 * The management APIs (Express, zod schemas, the OpenAPI document) load on their first request: an idle
 * sidecar does without them (server/management.ts). The probes are answered without them from the start.
 */
function lazyManagement(deps: ManagementDeps, logger: Logger): (which: 'internal' | 'public') => Handler {
  let loading: Promise<ManagementApps> | null = null;
  let apps: ManagementApps | null = null;
  return (which) => (req, res) => {
    if (apps) return apps[which](req, res);
    (loading ??= import('./management.ts').then((m) => (apps = m.createManagement(deps)))).then(
      (loaded) => loaded[which](req, res),
      (err: unknown) => {
        logger.error({ err }, 'the management API failed to load');
        sendError(res, (res as ServerResponse & { locals?: { requestId?: string } }).locals?.requestId ?? requestIdOf(req), 'internal_error', 'Internal error.');
      },
    );
  };
}

/** The store and everything that needs it: the key cache, the auth pipeline, the limits, usage and webhooks. */
export async function wireStore(config: Config, core: Core) {
  const { logger, metrics, tracing } = core;
  // Key mutations' events go to their tenant's outbox, written by the store through the port it defines.
  const outboxes = config.webhooks.enabled ? new WebhookOutboxes(config.redis.keyPrefix, config.webhooks.outboxMaxEntries, config.webhooks, logger) : null;
  const opened = await openStore(config, outboxes);
  const store = (core.late.store = opened.store);
  const redis = opened.redis;
  if (redis && tracing) tracing.traceRedis(redis as unknown as RedisLike);
  if (store.kind === 'memory') {
    logger.warn('no Redis configured: using the embedded in-memory store; tenants and keys vanish when keygate stops');
  } else if (!opened.ready) {
    logger.warn('Redis is not reachable yet; starting degraded (cached keys only until it is)');
  }
  // Set once shutdown begins: closing the store then closes its connection, which is no loss to warn about.
  let closing = false;
  if (redis) {
    // The main connection's changes, for operators (and the failover tests): where it is connected once ready
    // (on Sentinel, the master the sentinels named), and when it is lost (at most once a second while it is).
    const lost = throttledWarn(logger, 'Redis connection lost; reconnecting');
    redis.on('ready', () => {
      const stream = (redis as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
      logger.info({ redis: stream?.remoteAddress ? `${stream.remoteAddress}:${stream.remotePort}` : 'cluster' }, 'Redis connection ready');
    });
    redis.on('close', () => {
      if (!closing) lost({});
    });
  }

  const format = createKeyFormat({ private: config.keys.privatePrefix, public: config.keys.publicPrefix });
  const hash = createKeyHasher(config.keys.pepper);
  const cache = new KeyCache(store, config.cache, metrics);
  if (tracing) cache.traceMiss = tracing.lookup;
  core.late.cacheSize = () => cache.size;
  // Session tokens: signed by the configured ring; the embedded store (one process) may make its own key.
  const tokenRing = config.tokens.signingKeys.length ? config.tokens.signingKeys : store.kind === 'memory' ? [randomSigningKey()] : [];
  const tokens = tokenRing.length ? createTokenReader(createTokenVerifier(tokenRing)) : null;
  const tokenUses = tokens ? (redis ? new RedisTokenUses(redis, config.redis.keyPrefix) : new MemoryTokenUses()) : null;
  const authenticate = createAuthenticator({ format, hash, cache, tokens });
  const usage = new Usage(store, logger, {
    flushIntervalMs: config.usage.flushIntervalSeconds * 1000,
    lastUsedIntervalMs: config.usage.lastUsedFlushSeconds * 1000,
    onSessionSeconds: (s) => metrics.sessionSeconds.inc(s),
  });
  const trustedProxies = config.server.trustedProxies.length ? compileCidrs(config.server.trustedProxies) : null;
  const xfccFrom = config.tls.trustXfccFrom.length ? compileCidrs(config.tls.trustXfccFrom) : null;
  const pipeline = createPipeline({ authenticate, authorize: createAuthorizer(core.policy), xfccFrom, maxAssistantBodyBytes: config.server.maxAssistantBodyBytes, tokenUses });
  const webhooks = wireWebhooks(config, core, store, redis, outboxes);
  const limits = wireLimits(config, core, redis, webhooks.queue);
  // What the process holds, by table, on /metrics (docs/state.md; the soak test reads these).
  const { limits: rateLimits, months, failures, slots } = limits;
  metrics.watchState('cache_untrusted', () => cache.untrusted);
  metrics.watchState('rate_limit_specs', () => rateLimits.size.specs);
  metrics.watchState('rate_limit_tenant_windows', () => rateLimits.size.tenantWindows);
  metrics.watchState('month_counts', () => months.size);
  metrics.watchState('failure_blocks', () => failures.size.blocked);
  metrics.watchState('failure_counts', () => failures.size.counting);
  metrics.watchState('usage_rows', () => usage.size.rows);
  metrics.watchState('usage_carried', () => usage.size.carried);
  metrics.watchState('usage_sessions', () => usage.size.sessions);
  if (slots instanceof MemorySessionSlots) metrics.watchState('session_slots', () => slots.size);

  // The console's sessions live where the store does: on Redis every worker and replica knows every session.
  const bounds = { ttlSeconds: config.console.sessionTtlSeconds, max: config.console.maxSessions, perOperator: config.console.maxSessionsPerOperator };
  const consoleSessions = redis ? new RedisConsoleSessions(redis, config.redis.keyPrefix, bounds) : new MemoryConsoleSessions(bounds);

  // What the management APIs (loaded on their first request) need to flush when keygate stops.
  const flushAtShutdown: Array<() => Promise<void>> = [];
  core.late.ready = { store, format, hash, usage, webhooks: webhooks.queue, tokenSigner: tokenRing[0] ?? null, consoleSessions, operatorGuard: { failures: limits.operatorFailures, clientIp: (req) => clientIpOf(req, trustedProxies) }, atShutdown: (flush) => void flushAtShutdown.push(flush) };
  return { store, cache, pipeline, usage, trustedProxies, xfccFrom, webhooks, limits, flushAtShutdown, markClosing: () => void (closing = true) };
}

export type Parts = Awaited<ReturnType<typeof wireStore>>;
