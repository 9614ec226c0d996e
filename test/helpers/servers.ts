import { afterAll, beforeAll } from 'vitest';
import { startKeygate, type KeygateOptions, type KeygateProcess } from './keygate.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { startUpstream, type Upstream } from './upstream.ts';

export interface Servers {
  /** Set before the file's tests run. */
  redis: RedisServer;
  upstream: Upstream;
  /** A keygate on this file's Redis and upstream (unless `opts` says otherwise), stopped after the file's tests. */
  keygate(opts?: KeygateOptions): Promise<KeygateProcess>;
}

/**
 * The real processes an end-to-end test file runs against: a redis-server and an upstream, started before its
 * tests, and the keygate processes it starts on them. All are stopped after its tests, keygate first.
 */
export function useServers(): Servers {
  const started: KeygateProcess[] = [];
  const servers = {
    async keygate(opts: KeygateOptions = {}) {
      const kg = await startKeygate({ redisUrl: servers.redis.url, upstream: servers.upstream.url, ...opts });
      started.push(kg);
      return kg;
    },
  } as Servers;
  beforeAll(async () => {
    [servers.redis, servers.upstream] = await Promise.all([startRedis(), startUpstream()]);
  });
  afterAll(async () => {
    await Promise.all(started.map((kg) => kg.stop()));
    await Promise.all([servers.redis?.close(), servers.upstream?.close()]);
  });
  return servers;
}
