import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createAuthorizer } from '../auth/authorize.ts';
import { createAuthzServer } from '../authz/handler.ts';
import { answerClientError } from '../http/client-error.ts';
import { createPipeline } from '../auth/pipeline.ts';
import { loadPolicy } from '../auth/policy.ts';
import { createTokenReader } from '../auth/session-token.ts';
import { createAuthenticator } from '../auth/verify.ts';
import { createTokenVerifier, randomSigningKey, SESSION_TOKEN_PREFIX } from '../keys/session-token.ts';
import { MemoryTokenUses, RedisTokenUses } from '../limits/token-uses.ts';
import { KeyCache } from '../cache/key-cache.ts';
import { packageRoot } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { clientIpOf, compileCidrs } from '../http/client-ip.ts';
import { sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { MonthCounter } from '../limits/calendar.ts';
import { FailureBlockImpl } from '../limits/failures.ts';
import { QuotaEvents } from '../limits/quota-events.ts';
import { RateLimitsImpl } from '../limits/rate-limits.ts';
import { MemoryTimeBank, RedisTimeBank, SessionQuota } from '../limits/session-quota.ts';
import { MemorySessionSlots, RedisSessionSlots } from '../limits/sessions.ts';
import { Usage } from '../limits/usage.ts';
import { createReadiness } from '../ops/health.ts';
import { createLoggers, throttledWarn } from '../ops/logger.ts';
import { DecisionRing } from '../ops/decision-ring.ts';
import { RecentBlocks } from '../limits/recent-blocks.ts';
import { createMetrics } from '../ops/metrics.ts';
import { createProbes } from '../ops/probes.ts';
import { loadTracing, type RedisLike } from '../ops/tracing.ts';
import { createForwarder } from '../proxy/forward.ts';
import { basePathOf } from '../decision/headers.ts';
import { createPublicHandler } from '../proxy/public-handler.ts';
import { createWebSocketProxy } from '../proxy/websocket.ts';
import { openStore } from '../store/index.ts';
import { newEvent, perMinute } from '../webhooks/events.ts';
import { ExpiryScanner } from '../webhooks/expiry.ts';
import { OutboxRegistrar, WebhookOutboxes } from '../webhooks/outbox.ts';
import { WebhookWorker } from '../webhooks/worker.ts';
import { DropReporter } from '../webhooks/drops.ts';
import type { KeyStore } from '../store/types.ts';
import type { ManagementDeps } from './management.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type ManagementApps = { internal: Handler; public: Handler };

/** limits.blocked events one replica sends per minute at most (the rest are counted in the next one's `suppressed`). */
const BLOCKED_EVENTS_PER_MINUTE = 60;
/** The console's per-minute decision chart covers the last 3 hours (a fixed ring: 180 × 6 counters). */
const CONSOLE_RING_MINUTES = 180;
/** Blocked addresses the console lists (the most recent; their blocks live in the limiter). */
const RECENT_BLOCKS = 100;

export const version: string = (JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string }).version;

const listenOn = (server: Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

/**
 * Starts keygate in the order Kubernetes probes expect: the internal listener first, answering
 * `/readyz` 503 "starting"; then the store, cache, auth pipeline and APIs; then the public listener, and only
 * then ready. `main.ts` handles signals and calls `shutdown()`.
 */
export async function startKeygate(config: Config) {
  const { logger, access, drain: drainLogs, dropped } = createLoggers(config.logging);
  // The console's fleet chart: decisions per minute over the last CONSOLE_RING_MINUTES, this process's (ops/decision-ring.ts).
  const ring = new DecisionRing(CONSOLE_RING_MINUTES);
  const metrics = createMetrics({ tenantLabel: config.metrics.tenantLabel, logLinesDropped: dropped, storeUp: () => readiness.storeUp(), onDecision: (d, listener) => listener !== 'internal' && ring.record(d) });
  const blocks = new RecentBlocks(RECENT_BLOCKS);
  // The policy is compiled before anything listens, so a bad file fails start-up (exit 78) at once.
  const policy = loadPolicy(config.policy.file);
  let adminToken = config.admin.token;
  let generatedAdminToken: string | null = null;
  if (!adminToken) adminToken = generatedAdminToken = `kg_admin_${randomBytes(24).toString('base64url')}`;
  // OpenTelemetry (docs/tracing.md): the SDK is loaded only when tracing is on. A traceparent is continued from
  // tracing.trustedPeers, by default the proxies and gateways keygate already trusts.
  const tracePeers = config.tracing.trustedPeers ?? [...config.server.trustedProxies, ...config.authz.trustedGateways];
  const tracing = await loadTracing({ config: config.tracing, trustedPeers: tracePeers.length ? compileCidrs(tracePeers) : null, version, upstreamUrl: config.upstream.url, logger });

  // ---- internal listener, up before anything else ----------------------------------------------------------
  let store: KeyStore | null = null;
  let cacheSize = () => 0;
  const readiness = createReadiness({
    // The embedded store is in this process: up, with no round trip to measure.
    storePing: () => (store === null ? null : store.kind === 'memory' ? Promise.resolve(0) : store.ping()),
    upstreamUrl: config.upstream.url,
    requireStore: config.readiness.requireStore,
    version,
    onStoreStatus: (up) => metrics.storeUp.set(up ? 1 : 0),
  });
  // The management APIs (Express, zod schemas, the OpenAPI document) load on their first request: an idle
  // sidecar does without them (server/management.ts). The probes are answered without them from the start.
  let ready: ReturnType<ManagementDeps['ready']> = null;
  const managementDeps: ManagementDeps = { config, version, adminToken, ring, blocks, metrics, logger, access, readiness, cacheSize: () => cacheSize(), ready: () => ready };
  let loading: Promise<ManagementApps> | null = null;
  let apps: ManagementApps | null = null;
  const lazily = (which: 'internal' | 'public'): Handler => (req, res) => {
    if (apps) return apps[which](req, res);
    (loading ??= import('./management.ts').then((m) => (apps = m.createManagement(managementDeps)))).then(
      (loaded) => loaded[which](req, res),
      (err: unknown) => {
        logger.error({ err }, 'the management API failed to load');
        sendError(res, (res as ServerResponse & { locals?: { requestId?: string } }).locals?.requestId ?? requestIdOf(req), 'internal_error', 'Internal error.');
      },
    );
  };
  const probe = createProbes({ readiness, metrics, logger, cacheSize: () => cacheSize() });
  const internalApi = lazily('internal');
  const opsServer = createServer((req, res) => {
    if (!probe(req, res)) internalApi(req, res);
  });
  const opsPort = await listenOn(opsServer, config.server.opsPort, config.server.opsHost);
  logger.info({ opsPort }, 'internal listener up');

  // ---- store and everything that needs it ------------------------------------------------------------------
  // Key mutations' events go to their tenant's outbox, written by the store through the port it defines.
  const outboxes = config.webhooks.enabled ? new WebhookOutboxes(config.redis.keyPrefix, config.webhooks.outboxMaxEntries, config.webhooks, logger) : null;
  const opened = await openStore(config, outboxes);
  store = opened.store;
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
  cacheSize = () => cache.size;
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
  const pipeline = createPipeline({ authenticate, authorize: createAuthorizer(policy), xfccFrom, maxAssistantBodyBytes: config.server.maxAssistantBodyBytes, tokenUses });
  // quota.threshold (80% and 100% of a monthly quota) is logged here; delivery (webhooks) subscribes to `quotaEvents`.
  const quotaEvents = new QuotaEvents();
  quotaEvents.on((event) => logger.info({ event }, 'quota.threshold'));
  // Webhooks: quota.threshold joins the tenant's outbox (the key.* events are written there by the
  // store, with their mutation); every replica runs a delivery worker.
  const webhooks = outboxes?.queue(redis) ?? null;
  const outboxRegistrar = outboxes?.redisOutbox ? new OutboxRegistrar(outboxes.redisOutbox, store, logger) : null;
  // An endpoint disabled after failing for a day: a webhook.disabled event (worker.ts), and its tenant's audit log.
  const onWebhookDisabled = async (e: { id: string; url: string; tenantId: string | null }) => {
    if (e.tenantId) await store.appendAudit(e.tenantId, { action: 'webhook.disabled', actor: 'keygate', keyId: null, details: { endpointId: e.id, url: e.url } });
  };
  // Jobs dropped at a cap: counted, and in the tenant's audit log (at most one entry a minute, with the counts).
  const webhookDrops = webhooks
    ? new DropReporter({
      count: (reason, n) => metrics.webhookJobsDropped.inc({ reason }, n),
      audit: async (tenantId, dropped) => {
        await store.appendAudit(tenantId, { action: 'webhook.jobs_dropped', actor: 'keygate', keyId: null, details: { dropped } });
      },
    }, logger)
    : null;
  const webhookWorker = webhooks ? new WebhookWorker(webhooks, config.webhooks, logger, onWebhookDisabled, (d) => webhookDrops!.report(d)) : null;
  const expiryScanner = webhooks ? new ExpiryScanner(store, webhooks, config.webhooks.expiryScanSeconds, logger) : null;
  if (webhooks) {
    quotaEvents.on((event) => {
      const { type, at, tenantId, ...data } = event;
      webhooks.enqueue(tenantId, newEvent(type, { tenantId, ...data }, new Date(at)))
        .catch((err: unknown) => logger.warn({ err, event }, 'quota.threshold not written to the webhook outbox'));
    });
  }
  const onQuotaThreshold = (event: Parameters<QuotaEvents['emit']>[0]) => quotaEvents.emit(event);
  const months = new MonthCounter({ redis, prefix: config.redis.keyPrefix, onFallback: () => metrics.storeErrors.inc({ op: 'quota' }) });
  const limits = new RateLimitsImpl({ redis, prefix: config.redis.keyPrefix, plans: config.plans, onFallback: () => metrics.storeErrors.inc({ op: 'rate_limit' }), months, onQuotaThreshold });
  const sessionQuota = new SessionQuota({
    bank: redis ? new RedisTimeBank(redis, config.redis.keyPrefix) : new MemoryTimeBank(),
    plans: config.plans,
    warningSeconds: config.quotas.sessionWarningSeconds,
    graceSeconds: config.quotas.sessionGraceSeconds,
    onThreshold: onQuotaThreshold,
    logger,
  });
  const failed = config.limits.failedAttempts;
  // limits.blocked: a platform event (it names an address, no tenant), written after the count that blocked;
  // at most BLOCKED_EVENTS_PER_MINUTE per replica (a client with many addresses causes blocks at will), the
  // next one saying how many were left out.
  const blockedEvent = perMinute(BLOCKED_EVENTS_PER_MINUTE, (suppressed, ip: string, blockSeconds: number) => {
    const at = new Date();
    logger.info({ ip, blockSeconds }, 'address blocked for failed authentication attempts');
    const data = { ip, failures: failed.maxFailures, windowSeconds: failed.windowSeconds, blockSeconds, blockedUntil: new Date(at.getTime() + blockSeconds * 1000).toISOString(), suppressed };
    webhooks?.enqueue(null, newEvent('limits.blocked', data, at)).catch((err: unknown) => logger.warn({ err, ip }, 'limits.blocked not written to the webhook outbox'));
  });
  const failures = new FailureBlockImpl({
    redis,
    prefix: config.redis.keyPrefix,
    cfg: failed,
    // Every block is listed in the console (bounded, RecentBlocks); the events are rate-limited.
    onBlocked: (ip: string, blockSeconds: number) => {
      blocks.add(ip, blockSeconds);
      blockedEvent(ip, blockSeconds);
    },
  });
  // Wrong operator tokens (the admin API, the console's sign-in) are counted apart from wrong keys on the public
  // listener: a client failing keys there must not lock the platform's operators out of the internal listener
  // (they may share an egress address), nor operators' typos block that address's proxied traffic.
  const operatorFailures = new FailureBlockImpl({
    redis,
    prefix: `${config.redis.keyPrefix}op:`,
    cfg: failed,
    onBlocked: (ip: string, blockSeconds: number) => {
      blocks.add(ip, blockSeconds);
      blockedEvent(ip, blockSeconds);
    },
  });
  const slots = redis ? new RedisSessionSlots(redis, config.redis.keyPrefix) : new MemorySessionSlots();
  // What the process holds, by table, on /metrics (docs/state.md; the soak test reads these).
  metrics.watchState('cache_untrusted', () => cache.untrusted);
  metrics.watchState('rate_limit_specs', () => limits.size.specs);
  metrics.watchState('rate_limit_tenant_windows', () => limits.size.tenantWindows);
  metrics.watchState('month_counts', () => months.size);
  metrics.watchState('failure_blocks', () => failures.size.blocked);
  metrics.watchState('failure_counts', () => failures.size.counting);
  metrics.watchState('usage_rows', () => usage.size.rows);
  metrics.watchState('usage_carried', () => usage.size.carried);
  metrics.watchState('usage_sessions', () => usage.size.sessions);
  if (slots instanceof MemorySessionSlots) metrics.watchState('session_slots', () => slots.size);

  // What the management APIs (loaded on their first request) need to flush when keygate stops.
  const flushAtShutdown: Array<() => Promise<void>> = [];
  ready = { store, format, hash, usage, webhooks, tokenSigner: tokenRing[0] ?? null, operatorGuard: { failures: operatorFailures, clientIp: (req) => clientIpOf(req, trustedProxies) }, atShutdown: (flush) => void flushAtShutdown.push(flush) };

  const forwarder = createForwarder({ target: config.upstream.url, timeoutMs: config.upstream.timeoutMs, maxSockets: config.upstream.maxSockets, maxQueue: config.upstream.maxQueue, plans: config.plans, metrics });
  const encrypted = Boolean(config.tls.cert);
  const identityHeaders = { trustedProxies, xfccFrom, encrypted, signingSecret: config.upstream.signingSecret, basePath: basePathOf(config.upstream.url), keyPrefixes: [config.keys.privatePrefix, config.keys.publicPrefix, SESSION_TOKEN_PREFIX] };
  const handlePublic = createPublicHandler({
    management: lazily('public'),
    managementBodyTimeoutMs: config.server.managementBodyTimeoutMs,
    pipeline,
    limits,
    failures,
    usage,
    forwarder,
    ...identityHeaders,
    metrics,
    logger,
    access,
    tracing,
  });
  const websockets = createWebSocketProxy({
    pipeline,
    limits,
    failures,
    slots,
    sessionQuota,
    cache,
    usage,
    plans: config.plans,
    upstreamUrl: config.upstream.url,
    timeoutMs: config.upstream.timeoutMs,
    revalidateSeconds: config.websocket.revalidateSeconds,
    maxPayloadBytes: config.websocket.maxPayloadBytes,
    ...identityHeaders,
    metrics,
    logger,
    tracing,
  });
  await cache.attach(websockets).catch((err: unknown) => logger.warn({ err }, 'cache invalidation subscription pending'));

  const publicServer: Server = encrypted
    ? createTlsServer(
        {
          cert: readFileSync(config.tls.cert!),
          key: readFileSync(config.tls.key!),
          // Requested, not required: only keys with enforceMtls need a certificate (docs/concepts.md).
          ...(config.tls.clientCa ? { ca: readFileSync(config.tls.clientCa), requestCert: true, rejectUnauthorized: false } : {}),
        },
        handlePublic,
      )
    : createServer(handlePublic);
  publicServer.on('upgrade', websockets.handleUpgrade);
  publicServer.on('clientError', answerClientError);
  // Slow-loris protection without cutting long streams: headers must arrive promptly.
  publicServer.headersTimeout = 20_000;
  publicServer.requestTimeout = 0;
  publicServer.keepAliveTimeout = 65_000;
  const port = await listenOn(publicServer, config.server.port, config.server.host);

  // ---- the authorizer for an existing gateway, when configured ------------------------------------------------
  let authzServer: Server | null = null;
  let authzPort: number | null = null;
  if (config.server.authzPort !== null) {
    authzServer = createAuthzServer({
      pipeline,
      limits,
      failures,
      usage,
      metrics,
      logger,
      access,
      tracing,
      trustedGateways: compileCidrs(config.authz.trustedGateways),
      trustedProxies,
      xfccFrom,
      keyPrefixes: identityHeaders.keyPrefixes,
      signingSecret: config.upstream.signingSecret,
      requestBody: config.authz.requestBody,
      websocket: config.authz.websocket,
    });
    authzPort = await listenOn(authzServer, config.server.authzPort, config.server.authzHost);
  }
  readiness.set('ready');
  outboxRegistrar?.start();
  webhookWorker?.start();
  expiryScanner?.start();

  let stopping: Promise<void> | null = null;
  const openStoreRef = store;

  return {
    config,
    logger,
    metrics,
    store: openStoreRef,
    port,
    opsPort,
    /** The authorizer listener's port, or null when it is off. */
    authzPort,
    adminToken,
    generatedAdminToken,
    /** `quota.threshold` events, for delivery to subscribers. */
    quotaEvents,
    /** Resolves once every log line so far is written. */
    drainLogs,

    /**
     * Graceful stop: readiness fails at once; no new connections; WebSockets get 1001; in-flight
     * requests finish (bounded by shutdown.timeoutSeconds); usage and lastUsedAt are flushed; Redis closed.
     */
    shutdown(): Promise<void> {
      stopping ??= (async () => {
        closing = true;
        readiness.set('stopping');
        const servers = authzServer ? [publicServer, opsServer, authzServer] : [publicServer, opsServer];
        await drainDelay(servers, config.shutdown.drainDelaySeconds * 1000);
        websockets.closeAll();
        const closed = Promise.all(servers.map((server) => new Promise<void>((r) => server.close(() => r()))));
        // Keep-alive connections close as soon as their current response is done.
        const reaper = setInterval(() => {
          for (const server of servers) server.closeIdleConnections();
        }, 50);
        const deadline = setTimeout(() => {
          logger.warn('shutdown timeout reached; closing the remaining connections');
          for (const server of servers) server.closeAllConnections();
        }, config.shutdown.timeoutSeconds * 1000);
        await closed;
        clearInterval(reaper);
        clearTimeout(deadline);
        forwarder.close();
        await expiryScanner?.stop();
        await webhookWorker?.stop();
        await outboxRegistrar?.stop();
        await webhookDrops?.flush();
        await usage.close();
        await Promise.all(flushAtShutdown.map((flush) => flush()));
        await openStoreRef.close();
        await tracing?.shutdown(); // the spans of the last requests are exported before exit
      })();
      return stopping;
    },
  };
}

export type Keygate = Awaited<ReturnType<typeof startKeygate>>;

/**
 * The first step of a graceful stop: readiness already answers 503, and for `ms` the listeners keep serving, so
 * a load balancer that polls readiness takes this replica out before it stops accepting (a request it sends
 * meanwhile is served, not refused). Every response in that window closes its connection, so no client keeps
 * a kept-alive socket that is about to be closed under it.
 */
async function drainDelay(servers: Server[], ms: number): Promise<void> {
  const closeAfter = (_req: unknown, res: { shouldKeepAlive: boolean }) => {
    res.shouldKeepAlive = false;
  };
  // Prepended: it must run before a handler that answers at once (the probes) has written its headers.
  for (const server of servers) server.prependListener('request', closeAfter);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}
