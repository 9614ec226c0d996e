import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/api.ts';
import { startKeygate } from '../helpers/keygate.ts';
import { startRedisCluster, type RedisTopology } from '../helpers/redis-topologies.ts';

// Start-up on a Cluster with a master dead at that moment (before its replica is promoted): keygate waits for
// every master's connection only until the store's deadline (5 s), then starts, degraded or not, never hangs.

let cluster: RedisTopology;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 90_000);
afterAll(async () => {
  await cluster?.close();
}, 30_000);

describe('Cluster readiness with a master down at start', () => {
  it('starts within the store deadline and serves once the replica is promoted', async () => {
    const failover = await cluster.killMaster();
    const began = Date.now();
    const kg = await startKeygate({ config: { redis: cluster.config }, redisUrl: null });
    try {
      const took = Date.now() - began;
      expect(took).toBeLessThan(5_000 + 4_000);
      await failover.promoted;
      await expect.poll(async () => (await call(`${kg.opsUrl}/readyz`, {})).status, { timeout: 20_000, interval: 250 }).toBe(200);
    } finally {
      await kg.stop();
    }
  }, 60_000);
});
