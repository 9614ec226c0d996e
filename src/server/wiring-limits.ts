import type { Config } from '../config/schema.ts';
import { MonthCounter } from '../limits/calendar.ts';
import { FailureBlockImpl } from '../limits/failures.ts';
import { QuotaEvents } from '../limits/quota-events.ts';
import { RateLimitsImpl } from '../limits/rate-limits.ts';
import { MemoryTimeBank, RedisTimeBank, SessionQuota } from '../limits/session-quota.ts';
import { MemorySessionSlots, RedisSessionSlots } from '../limits/sessions.ts';
import type { RedisClient } from '../store/redis/connect.ts';
import type { KeyStore } from '../store/types.ts';
import { newEvent, perMinute } from '../webhooks/events.ts';
import { ExpiryScanner } from '../webhooks/expiry.ts';
import { OutboxRegistrar, type WebhookOutboxes } from '../webhooks/outbox.ts';
import { WebhookWorker } from '../webhooks/worker.ts';
import { DropReporter } from '../webhooks/drops.ts';
import type { RecentBlocks } from '../limits/recent-blocks.ts';
import type { Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';

// The two groups of components built on the store that have most parts: webhook delivery (the outbox queue and
// the background work that drains it) and the limits (rate limits, quotas, failed-attempt blocks, sessions).

/** limits.blocked events one replica sends per minute at most (the rest are counted in the next one's `suppressed`). */
const BLOCKED_EVENTS_PER_MINUTE = 60;

/** What both read from the core (server/wiring.ts). */
interface Core {
  logger: Logger;
  metrics: Metrics;
  blocks: RecentBlocks;
}

/** Webhooks: every replica runs a delivery worker; the key.* events are written to the outbox by the store. */
export function wireWebhooks(config: Config, core: Core, store: KeyStore, redis: RedisClient | null, outboxes: WebhookOutboxes | null) {
  const { logger, metrics } = core;
  const queue = outboxes?.queue(redis) ?? null;
  const registrar = outboxes?.redisOutbox ? new OutboxRegistrar(outboxes.redisOutbox, store, logger) : null;
  // An endpoint disabled after failing for a day: a webhook.disabled event (worker.ts), and its tenant's audit log.
  const onWebhookDisabled = async (e: { id: string; url: string; tenantId: string | null }) => {
    if (e.tenantId) await store.appendAudit(e.tenantId, { action: 'webhook.disabled', actor: 'keygate', keyId: null, details: { endpointId: e.id, url: e.url } });
  };
  // Jobs dropped at a cap: counted, and in the tenant's audit log (at most one entry a minute, with the counts).
  const drops = queue
    ? new DropReporter({
      count: (reason, n) => metrics.webhookJobsDropped.inc({ reason }, n),
      audit: async (tenantId, dropped) => {
        await store.appendAudit(tenantId, { action: 'webhook.jobs_dropped', actor: 'keygate', keyId: null, details: { dropped } });
      },
    }, logger)
    : null;
  const worker = queue ? new WebhookWorker(queue, config.webhooks, logger, onWebhookDisabled, (d) => drops!.report(d)) : null;
  const expiryScanner = queue ? new ExpiryScanner(store, queue, config.webhooks.expiryScanSeconds, logger) : null;
  return { queue, registrar, drops, worker, expiryScanner };
}

export type Webhooks = ReturnType<typeof wireWebhooks>;

export function wireLimits(config: Config, core: Core, redis: RedisClient | null, webhooks: Webhooks['queue']) {
  const { logger, metrics, blocks } = core;
  // quota.threshold (80% and 100% of a monthly quota) is logged here, and joins the tenant's webhook outbox.
  const quotaEvents = new QuotaEvents();
  quotaEvents.on((event) => logger.info({ event }, 'quota.threshold'));
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
  // Every block is listed in the console (bounded, RecentBlocks); the events are rate-limited.
  const onBlocked = (ip: string, blockSeconds: number) => {
    blocks.add(ip, blockSeconds);
    blockedEvent(ip, blockSeconds);
  };
  const failures = new FailureBlockImpl({ redis, prefix: config.redis.keyPrefix, cfg: failed, onBlocked });
  // Wrong operator tokens (the admin API, the console's sign-in) are counted apart from wrong keys on the public
  // listener: a client failing keys there must not lock the platform's operators out of the internal listener
  // (they may share an egress address), nor operators' typos block that address's proxied traffic.
  const operatorFailures = new FailureBlockImpl({ redis, prefix: `${config.redis.keyPrefix}op:`, cfg: failed, onBlocked });
  const slots = redis ? new RedisSessionSlots(redis, config.redis.keyPrefix) : new MemorySessionSlots();
  return { quotaEvents, months, limits, sessionQuota, failures, operatorFailures, slots };
}
