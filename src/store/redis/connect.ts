import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.ts';
import type { RedisClient } from './redis-store.ts';

/**
 * One ioredis client per the configured topology. Commands fail fast rather than queue while Redis is down
 * (SPEC §8: per-call timeout, no unbounded offline queue); reconnection continues in the background so
 * recovery needs no restart. Auto-pipelining batches concurrent commands into one round trip.
 */
export function createRedisClient(cfg: Config['redis'], role: 'main' | 'subscriber'): RedisClient {
  const common: RedisOptions = {
    commandTimeout: role === 'main' ? cfg.commandTimeoutMs : undefined,
    enableAutoPipelining: role === 'main',
    // A subscriber must queue its SUBSCRIBE until connected; the main client never queues.
    enableOfflineQueue: role === 'subscriber',
    maxRetriesPerRequest: role === 'main' ? 0 : null,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    connectTimeout: 2_000,
    lazyConnect: false,
  };
  if (cfg.clusterNodes) {
    const nodes = cfg.clusterNodes.map((u) => {
      const url = new URL(u);
      return { host: url.hostname, port: Number(url.port || 6379) };
    });
    const first = new URL(cfg.clusterNodes[0]!);
    return new Cluster(nodes, {
      enableAutoPipelining: common.enableAutoPipelining,
      enableOfflineQueue: common.enableOfflineQueue,
      clusterRetryStrategy: common.retryStrategy,
      redisOptions: {
        ...common,
        username: first.username || undefined,
        password: first.password ? decodeURIComponent(first.password) : undefined,
        tls: first.protocol === 'rediss:' ? {} : undefined,
      },
    });
  }
  if (cfg.sentinels) return new Redis({ ...common, sentinels: cfg.sentinels, name: cfg.sentinelName });
  return new Redis(cfg.url!, common);
}

/** Resolves once the client is ready, or after `timeoutMs` (keygate then starts degraded). */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const onReady = () => done(true);
    function done(ok: boolean) {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    }
    client.on('ready', onReady);
  });
}
