import type { Config } from '../config/schema.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { createRedisClient, waitReady, type RedisClient } from '../store/redis/connect.ts';
import { RedisStore } from '../store/redis/redis-store.ts';
import type { KeyStore } from '../store/types.ts';
import { webhookOutbox } from '../webhooks/events.ts';
import { MemoryOutbox, MemoryWebhookQueue } from '../webhooks/memory-queue.ts';
import { RedisWebhookQueue } from '../webhooks/redis-queue.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

// Opening the store is wiring: the store and the webhook queue beside it, joined by the outbox port the
// store defines (store/outbox.ts) and webhooks/ implements; so it lives with the server, above both.

export type { KeyStore } from '../store/types.ts';

export interface OpenedStore {
  store: KeyStore;
  /** The main Redis client (rate limiters share it); null for the embedded store. */
  redis: RedisClient | null;
  ready: boolean;
  /** Webhook delivery state beside the store; null when `webhooks.enabled` is off. */
  webhooks: WebhookQueue | null;
}

export const usesRedis = (c: Config): boolean => Boolean(c.redis.url || c.redis.sentinels || c.redis.clusterNodes);

export async function openStore(config: Config): Promise<OpenedStore> {
  if (!usesRedis(config)) {
    const outbox = config.webhooks.enabled ? new MemoryOutbox() : null;
    const store = new MemoryStore({ auditMaxEntries: config.audit.maxEntries, refusalWindowSeconds: config.audit.refusalWindowSeconds, outbox });
    return { store, redis: null, ready: true, webhooks: outbox ? new MemoryWebhookQueue(outbox) : null };
  }
  const client = createRedisClient(config.redis, 'main');
  const subscriber = createRedisClient(config.redis, 'subscriber');
  // Errors are reported through readiness and metrics; without a listener ioredis would log each one.
  client.on('error', () => {});
  subscriber.on('error', () => {});
  const store = new RedisStore({
    client,
    subscriber,
    prefix: config.redis.keyPrefix,
    channel: config.redis.channel,
    auditMaxEntries: config.audit.maxEntries,
    refusalWindowSeconds: config.audit.refusalWindowSeconds,
    outbox: config.webhooks.enabled ? { ...webhookOutbox, maxEntries: config.webhooks.outboxMaxEntries } : null,
  });
  const ready = await waitReady(client, 5_000);
  const webhooks = config.webhooks.enabled ? new RedisWebhookQueue(client, config.redis.keyPrefix, config.webhooks.outboxMaxEntries) : null;
  return { store, redis: client, ready, webhooks };
}
