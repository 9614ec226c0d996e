import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, proxied, self } from '../helpers/api.ts';
import { rawExchange, startRecordingUpstream, UPGRADE, type RawReply, type RecordingUpstream } from '../helpers/doors.ts';
import { root, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// The WebSocket upgrade is a door of the one decision (decision/gate.ts): the failed-attempt block it honours and
// feeds is the one HTTP requests share, and a store it cannot reach is answered 503 store_unavailable with
// Retry-After, never 401 and never a dial. Both against a real keygate, Redis and upstream.

let redis: RedisServer;
let upstream: RecordingUpstream;
let kg: KeygateProcess;

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startRecordingUpstream()]);
  kg = await startKeygate({
    redisUrl: redis.url,
    upstream: upstream.url,
    env: { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') },
    config: { limits: { failedAttempts: { maxFailures: 3, windowSeconds: 60, blockSeconds: 300 } } },
  });
}, 60_000);

afterAll(async () => {
  await kg?.stop();
  await Promise.all([upstream?.close(), redis?.close()]);
});

const upgrade = (key: string, from = '127.0.0.1'): Promise<RawReply> => rawExchange(kg.port, 'GET', '/v1/open/ws', [...UPGRADE, ['X-API-Key', key]], '', from);

const codeOf = (r: RawReply): string => (JSON.parse(r.body) as { error: { code: string } }).error.code;

describe('the WebSocket upgrade through the one decision', () => {
  it('counts failed upgrades toward the client block, then refuses every door 429 too_many_failed_attempts without a dial', async () => {
    const { key } = await createTenant(kg, { name: 'ws-block' });
    // Another client address on loopback, so the block does not reach the admin calls of the other test.
    const from = '127.0.0.7';
    for (let i = 0; i < 3; i++) {
      const r = await upgrade('kg_sk_notakeyatall', from);
      expect(r.status).toBe(401);
      expect(codeOf(r)).toBe('invalid_api_key');
    }
    const before = upstream.seen.length;
    const blocked = await upgrade(key, from);
    expect(blocked.status, blocked.body).toBe(429);
    expect(codeOf(blocked)).toBe('too_many_failed_attempts');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // The block is the decision's, not the upgrade's: a plain request from that client is refused alike.
    const http = await rawExchange(kg.port, 'GET', '/v1/open/x', [['X-API-Key', key]], '', from);
    expect(http.status).toBe(429);
    expect(codeOf(http)).toBe('too_many_failed_attempts');
    expect(upstream.seen.length).toBe(before);
    // Another client is not blocked.
    expect((await upgrade(key)).status).toBe(101);
  });

  it('answers 503 store_unavailable with Retry-After when the store cannot be asked about the key, and dials nothing', async () => {
    const { key } = await createTenant(kg, { name: 'ws-store-down' });
    // A key keygate has never looked up: the upgrade must ask the store.
    const fresh = await self(kg, key, 'POST', '/api-keys', { permissions: ['*'] });
    expect(fresh.status).toBe(201);
    expect((await proxied(kg, '/v1/open/x', { 'x-api-key': key })).status).toBe(200);
    await redis.stop();
    const before = upstream.seen.length;
    const r = await upgrade(fresh.body.key as string).finally(() => redis.start());
    expect(r.status, r.body).toBe(503);
    expect(codeOf(r)).toBe('store_unavailable');
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect(upstream.seen.length).toBe(before);
  }, 30_000);
});
