import type { Config } from '../config/schema.ts';
import { MemoryStore } from './memory/memory-store.ts';
import type { OutboxProvider } from './outbox.ts';
import { createRedisClient, waitReady } from './redis/connect.ts';
import { RedisStore, type RedisClient } from './redis/redis-store.ts';
import type { KeyStore } from './types.ts';

export type { KeyStore } from './types.ts';

export interface OpenedStore {
  store: KeyStore;
  /** The main Redis client (rate limiters share it); null for the embedded store. */
  redis: RedisClient | null;
  ready: boolean;
}

export const usesRedis = (c: Config): boolean => Boolean(c.redis.url || c.redis.sentinels || c.redis.clusterNodes);

/** Opens the configured store; `outbox` (store/outbox.ts) receives the key mutations' events, none when null. */
export async function openStore(config: Config, outbox: OutboxProvider | null = null): Promise<OpenedStore> {
  if (!usesRedis(config)) {
    const store = new MemoryStore({ auditMaxEntries: config.audit.maxEntries, refusalWindowSeconds: config.audit.refusalWindowSeconds, outbox: outbox?.memory() ?? null });
    return { store, redis: null, ready: true };
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
    outbox: outbox?.redis(client) ?? null,
  });
  const ready = await waitReady(client, 5_000);
  return { store, redis: client, ready };
}
