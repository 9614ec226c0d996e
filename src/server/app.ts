import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { adminRouter } from '../api/admin.ts';
import { assignRequestId, errorHandler, jsonBody, notFound } from '../api/http.ts';
import { KeyService } from '../api/key-service.ts';
import { buildOpenApi } from '../api/openapi.ts';
import { selfServiceRouter } from '../api/self-service.ts';
import { createAuthorizer } from '../auth/authorize.ts';
import { createPipeline } from '../auth/pipeline.ts';
import { loadPolicy } from '../auth/policy.ts';
import { createAuthenticator } from '../auth/verify.ts';
import { KeyCache } from '../cache/key-cache.ts';
import { packageRoot } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { compileCidrs } from '../http/client-ip.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { FailureBlockImpl } from '../limits/failures.ts';
import { RateLimitsImpl } from '../limits/rate-limits.ts';
import { MemorySessionSlots, RedisSessionSlots } from '../limits/sessions.ts';
import { Usage } from '../limits/usage.ts';
import { createReadiness } from '../ops/health.ts';
import { createLogger, type Logger } from '../ops/logger.ts';
import { createMetrics } from '../ops/metrics.ts';
import { createForwarder } from '../proxy/forward.ts';
import { createPublicHandler, MANAGEMENT_PREFIX } from '../proxy/public-handler.ts';
import { createWebSocketProxy } from '../proxy/websocket.ts';
import { openStore } from '../store/index.ts';

export const version: string = (JSON.parse(readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string }).version;

export interface KeygateOptions {
  logger?: Logger;
}

/**
 * Assembles keygate from its configuration without listening: store, cache, auth pipeline, management APIs,
 * proxy and the ops endpoints. `main.ts` listens and handles signals.
 */
export async function createKeygate(config: Config, opts: KeygateOptions = {}) {
  const logger = opts.logger ?? createLogger(config.logging);
  const metrics = createMetrics({ tenantLabel: config.metrics.tenantLabel });
  // The policy is compiled before anything connects, so a bad file fails start-up (exit 78) at once.
  const policy = loadPolicy(config.policy.file);
  const { store, redis, ready: storeReady } = await openStore(config);
  if (store.kind === 'memory') {
    logger.warn('no Redis configured: using the embedded in-memory store; tenants and keys vanish when keygate stops');
  } else if (!storeReady) {
    logger.warn('Redis is not reachable yet; starting degraded (cached keys only until it is)');
  }
  let adminToken = config.admin.token;
  let generatedAdminToken: string | null = null;
  if (!adminToken) {
    adminToken = generatedAdminToken = `kg_admin_${randomBytes(24).toString('base64url')}`;
  }

  const format = createKeyFormat({ private: config.keys.privatePrefix, public: config.keys.publicPrefix });
  const hash = createKeyHasher(config.keys.pepper);
  const cache = new KeyCache(store, config.cache, metrics);
  const authenticate = createAuthenticator({ format, hash, cache });
  const usage = new Usage(store, logger, { flushIntervalMs: config.usage.flushIntervalSeconds * 1000, lastUsedIntervalMs: config.usage.lastUsedFlushSeconds * 1000 });
  const service = new KeyService({ store, config, format, hash, lastUsed: usage });
  const trustedProxies = config.server.trustedProxies.length ? compileCidrs(config.server.trustedProxies) : null;
  const xfccFrom = config.tls.trustXfccFrom.length ? compileCidrs(config.tls.trustXfccFrom) : null;
  const pipeline = createPipeline({ authenticate, authorize: createAuthorizer(policy), xfccFrom, maxAssistantBodyBytes: config.server.maxAssistantBodyBytes });
  const limits = new RateLimitsImpl({ redis, prefix: config.redis.keyPrefix, plans: config.plans, onFallback: () => metrics.storeErrors.inc({ op: 'rate_limit' }) });
  const failures = new FailureBlockImpl({ redis, prefix: config.redis.keyPrefix, cfg: config.limits.failedAttempts });
  const slots = redis ? new RedisSessionSlots(redis, config.redis.keyPrefix) : new MemorySessionSlots();

  const openapi = buildOpenApi(version);
  const management = express();
  management.disable('x-powered-by');
  management.set('etag', false);
  management.use(assignRequestId);
  management.use(MANAGEMENT_PREFIX, ...jsonBody(config.server.maxBodyBytes), selfServiceRouter({ service, authenticate, usage, openapi: () => openapi }));
  management.use(notFound);
  management.use(errorHandler(logger));

  const readiness = createReadiness({
    store,
    upstreamUrl: config.upstream.url,
    requireStore: config.readiness.requireStore,
    version,
    onStoreStatus: (up) => metrics.storeUp.set(up ? 1 : 0),
  });

  const ops = express();
  ops.disable('x-powered-by');
  ops.set('etag', false);
  ops.use(assignRequestId);
  ops.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  ops.get('/readyz', async (_req, res) => {
    const { httpStatus, body } = await readiness.report();
    res.status(httpStatus).json(body);
  });
  ops.get('/metrics', async (_req, res) => {
    metrics.cacheEntries.set(cache.size);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  ops.use('/admin/v1', ...jsonBody(config.server.maxBodyBytes), adminRouter({ service, adminToken, usage }));
  ops.use(notFound);
  ops.use(errorHandler(logger));

  const forwarder = createForwarder({ target: config.upstream.url, timeoutMs: config.upstream.timeoutMs, maxSockets: config.upstream.maxSockets, metrics });
  const encrypted = Boolean(config.tls.cert);
  const identityHeaders = { trustedProxies, xfccFrom, encrypted, signingSecret: config.upstream.signingSecret };
  const handlePublic = createPublicHandler({
    management: management as unknown as (req: IncomingMessage, res: ServerResponse) => void,
    pipeline,
    limits,
    failures,
    usage,
    forwarder,
    ...identityHeaders,
    metrics,
    logger,
    accessLog: config.logging.accessLog,
  });
  const websockets = createWebSocketProxy({
    pipeline,
    limits,
    failures,
    slots,
    cache,
    usage,
    plans: config.plans,
    upstreamUrl: config.upstream.url,
    timeoutMs: config.upstream.timeoutMs,
    revalidateSeconds: config.websocket.revalidateSeconds,
    ...identityHeaders,
    metrics,
    logger,
  });
  await cache.attach(websockets).catch((err: unknown) => logger.warn({ err }, 'cache invalidation subscription pending'));

  const publicServer: Server = encrypted
    ? createTlsServer(
        {
          cert: readFileSync(config.tls.cert!),
          key: readFileSync(config.tls.key!),
          // Requested, not required: only keys with enforceMtls need a certificate (SPEC §7).
          ...(config.tls.clientCa ? { ca: readFileSync(config.tls.clientCa), requestCert: true, rejectUnauthorized: false } : {}),
        },
        handlePublic,
      )
    : createServer(handlePublic);
  publicServer.on('upgrade', websockets.handleUpgrade);
  const opsServer = createServer(ops);
  // Slow-loris protection without cutting long streams: headers must arrive promptly.
  publicServer.headersTimeout = 20_000;
  publicServer.requestTimeout = 0;
  publicServer.keepAliveTimeout = 65_000;

  const listen = (server: Server, port: number, host: string) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });

  let stopping: Promise<void> | null = null;

  return {
    config,
    logger,
    metrics,
    store,
    cache,
    service,
    usage,
    readiness,
    limits,
    websockets,
    publicServer,
    opsServer,
    adminToken,
    generatedAdminToken,

    async listen(): Promise<{ port: number; opsPort: number }> {
      const opsPort = await listen(opsServer, config.server.opsPort, config.server.opsHost);
      const port = await listen(publicServer, config.server.port, config.server.host);
      readiness.set('ready');
      return { port, opsPort };
    },

    /** Graceful stop (SPEC §9): not ready at once, no new connections, in-flight work drains, then flushes. */
    shutdown(): Promise<void> {
      stopping ??= (async () => {
        readiness.set('stopping');
        websockets.closeAll();
        const deadline = setTimeout(() => {
          publicServer.closeAllConnections();
          opsServer.closeAllConnections();
        }, config.shutdown.timeoutSeconds * 1000);
        deadline.unref();
        const closed = Promise.all([
          new Promise<void>((r) => publicServer.close(() => r())),
          new Promise<void>((r) => opsServer.close(() => r())),
        ]);
        publicServer.closeIdleConnections();
        opsServer.closeIdleConnections();
        await closed;
        clearTimeout(deadline);
        forwarder.close();
        await usage.close();
        await store.close();
      })();
      return stopping;
    },
  };
}

export type Keygate = Awaited<ReturnType<typeof createKeygate>>;
