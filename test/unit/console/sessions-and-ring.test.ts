import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperators, operatorsByCredential } from '../../../src/api/operators.ts';
import { RedisConsoleSessions } from '../../../src/console/redis-sessions.ts';
import { MemoryConsoleSessions, type ConsoleSessions } from '../../../src/console/sessions.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { createRedisClient, waitReady } from '../../../src/store/redis/connect.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import { startRedisCluster, type RedisTopology } from '../../helpers/redis-topologies.ts';
import { RecentBlocks } from '../../../src/limits/recent-blocks.ts';
import { DecisionRing } from '../../../src/ops/decision-ring.ts';
import { createHash } from 'node:crypto';

// The console's in-process state, each with its bound: sessions, the per-minute decision ring, recent blocks.

describe('console sessions in memory', () => {
  const alice = { name: 'alice', role: 'write' as const, named: true };

  it('end at their absolute lifetime and at sign-out', async () => {
    let now = 0;
    const sessions = new MemoryConsoleSessions({ ttlSeconds: 60, max: 2, perOperator: 2, now: () => now });
    const a = (await sessions.create(alice)).id;
    now = 30_000;
    expect(await sessions.get(a)).toEqual(alice);
    now = 60_000;
    expect(await sessions.get(a)).toBeNull();
    const c = (await sessions.create(alice)).id;
    await sessions.end(c);
    expect(await sessions.get(c)).toBeNull();
    expect(sessions.size).toBe(0);
    expect(await sessions.get(undefined)).toBeNull();
    expect(await sessions.get('forged')).toBeNull();
  });

  it('expired sessions make room at the global bound', async () => {
    let now = 0;
    const sessions = new MemoryConsoleSessions({ ttlSeconds: 60, max: 2, perOperator: 2, now: () => now });
    await sessions.create(alice);
    await sessions.create({ ...alice, name: 'bob' });
    await expect(sessions.create({ ...alice, name: 'carol' })).rejects.toThrow(expect.objectContaining({ code: 'concurrency_limit_reached', options: { headers: { 'Retry-After': 60 } } }));
    now = 60_000;
    expect((await sessions.create({ ...alice, name: 'carol' })).id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.size).toBe(1);
  });
});

// The same bounds, on each implementation: the Redis one against a real redis-server and a real Cluster (its
// three keys share one slot), two instances on two connections as two workers or replicas have.
describe.each(['memory', 'redis', 'cluster'] as const)('console sessions (%s)', (kind) => {
  const alice = { name: 'alice', role: 'write' as const, named: true };
  let redis: RedisServer | null = null;
  let cluster: RedisTopology | null = null;
  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedis();
    if (kind === 'cluster') cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.all([redis?.close(), cluster?.close()]);
  }, 30_000);
  let prefix = 0;
  /** Two views of one set of sessions: on Redis two clients (two processes), in memory the same object. */
  const make = async (bounds: { ttlSeconds: number; max: number; perOperator: number }): Promise<[ConsoleSessions, ConsoleSessions, () => Promise<void>]> => {
    if (kind === 'memory') {
      const one = new MemoryConsoleSessions(bounds);
      return [one, one, async () => {}];
    }
    const p = `t${++prefix}:`;
    const config = configSchema.parse({ redis: redis ? { url: redis.url } : cluster!.config }).redis;
    const clients = [createRedisClient(config, 'main'), createRedisClient(config, 'main')];
    for (const c of clients) c.on('error', () => {});
    for (const c of clients) if (!(await waitReady(c, 10_000))) throw new Error(`the ${kind} client did not connect`);
    return [new RedisConsoleSessions(clients[0]!, p, bounds), new RedisConsoleSessions(clients[1]!, p, bounds), async () => void (await Promise.all(clients.map((c) => c.quit())))];
  };

  it("end an operator's own oldest beyond their bound, and refuse rather than end another operator's at the global bound", async () => {
    const bob = { name: 'bob', role: 'read' as const, named: true };
    const carol = { name: 'carol', role: 'read' as const, named: true };
    const [sessions, other, close] = await make({ ttlSeconds: 60, max: 3, perOperator: 2 });
    try {
      const [a1, a2, a3] = [(await sessions.create(alice)).id, (await other.create(alice)).id, (await sessions.create(alice)).id];
      expect([await other.get(a1), await other.get(a2), await sessions.get(a3)]).toEqual([null, alice, alice]);
      const b = (await other.create(bob)).id;
      await expect(sessions.create(carol)).rejects.toThrow(expect.objectContaining({ code: 'concurrency_limit_reached', options: { headers: { 'Retry-After': 60 } } }));
      // Bob and alice, at their own bound or not, never end each other's sessions.
      await sessions.create(alice);
      expect([await other.get(a2), await other.get(a3), await sessions.get(b)]).toEqual([null, alice, bob]);
      await expect(other.create(bob)).rejects.toThrow(expect.objectContaining({ code: 'concurrency_limit_reached' }));
      // A sign-out through one ends the session for the other at once.
      await other.end(a3);
      expect(await sessions.get(a3)).toBeNull();
      expect((await sessions.create(carol)).id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await sessions.get(undefined)).toBeNull();
      expect(await sessions.get('forged')).toBeNull();
    } finally {
      await close();
    }
  });

  it('have unguessable ids', async () => {
    const [sessions, , close] = await make({ ttlSeconds: 60, max: 10, perOperator: 10 });
    try {
      const ids = new Set(await Promise.all(Array.from({ length: 5 }, async () => (await sessions.create(alice)).id)));
      expect(ids.size).toBe(5);
      for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    } finally {
      await close();
    }
  });

  if (kind === 'redis') it('keep only digests, under one hash tag, and expire on Redis\'s clock with the keys\' TTL', async () => {
    const [sessions, , close] = await make({ ttlSeconds: 1, max: 1, perOperator: 10 });
    const p = `t${prefix}:`;
    try {
      const { id } = await sessions.create(alice);
      const keys = (await redis!.client.keys(`${p}*`)).sort();
      expect(keys).toEqual([`${p}{console}:expiry`, `${p}{console}:operators`, `${p}{console}:sessions`]);
      const dump = JSON.stringify([await redis!.client.hgetall(`${p}{console}:sessions`), await redis!.client.hgetall(`${p}{console}:operators`), await redis!.client.zrange(`${p}{console}:expiry`, '0', '-1')]);
      expect(dump).not.toContain(id);
      expect(dump).toContain(createHash('sha256').update(id).digest('hex'));
      for (const k of keys) expect(await redis!.client.pttl(k)).toBeGreaterThan(0);
      await expect(sessions.create({ ...alice, name: 'bob' })).rejects.toThrow(expect.objectContaining({ code: 'concurrency_limit_reached' }));
      await new Promise((r) => setTimeout(r, 1_100));
      // The expired session makes room, and is gone from Redis.
      const bob = (await sessions.create({ ...alice, name: 'bob' })).id;
      expect(await sessions.get(id)).toBeNull();
      expect(await redis!.client.hkeys(`${p}{console}:sessions`)).toEqual([createHash('sha256').update(bob).digest('hex')]);
      expect(await redis!.client.hgetall(`${p}{console}:operators`)).toEqual({ bob: createHash('sha256').update(bob).digest('hex') });
      await sessions.end(bob);
      expect(await redis!.client.keys(`${p}*`)).toEqual([]);
    } finally {
      await close();
    }
  });
});

describe('operator tokens', () => {
  it('resolve the admin token and named tokens by their SHA-256, nothing else', () => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const of = createOperators('admin-token-0123456789', [{ name: 'bob', sha256: sha('bob-token-0123456789'), role: 'read' }]);
    expect(of('admin-token-0123456789')).toMatchObject({ name: 'admin', role: 'write', named: false });
    expect(of('bob-token-0123456789')).toMatchObject({ name: 'bob', role: 'read', named: true });
    // A session keeps the credential and finds the operator configured now by it; the credential is no token.
    const current = operatorsByCredential('admin-token-0123456789', [{ name: 'bob', sha256: sha('bob-token-0123456789'), role: 'read' }]);
    expect(current(of('bob-token-0123456789')!.credential)).toMatchObject({ name: 'bob', role: 'read' });
    expect(current(of('admin-token-0123456789')!.credential)).toMatchObject({ name: 'admin', role: 'write' });
    expect(of(of('bob-token-0123456789')!.credential!)).toBeNull();
    expect(current(undefined)).toBeNull();
    expect(operatorsByCredential('another-admin-token-0123', [])(of('admin-token-0123456789')!.credential)).toBeNull();
    expect(of(sha('bob-token-0123456789'))).toBeNull();
    expect(of('')).toBeNull();
  });
});

describe('decision ring', () => {
  it('counts decisions per minute by status and forgets minutes older than the ring', () => {
    let now = Date.parse('2026-11-22T10:00:30Z');
    const ring = new DecisionRing(3, () => now);
    ring.record('allowed');
    ring.record('invalid_api_key');
    ring.record('rate_limited');
    ring.record('quota_exceeded');
    ring.record('store_unavailable');
    ring.record('insufficient_permissions');
    ring.record('route_not_allowed');
    ring.record('something_new');
    now += 60_000;
    ring.record('allowed');
    const read = ring.read();
    expect(read.map((m) => m.at)).toEqual(['2026-11-22T09:59:00.000Z', '2026-11-22T10:00:00.000Z', '2026-11-22T10:01:00.000Z']);
    expect(read[1]!.counts).toEqual({ allowed: 1, 401: 1, 403: 1, 429: 2, 503: 1, other: 2 });
    expect(read[2]!.counts.allowed).toBe(1);
    now += 3 * 60_000;
    expect(ring.read().every((m) => Object.values(m.counts).every((c) => c === 0))).toBe(true);
    ring.record('allowed');
    expect(ring.read().at(-1)!.counts.allowed).toBe(1);
  });
});

describe('recent blocks', () => {
  it('lists live blocks newest first, at most `max`, and drops ended ones', () => {
    let now = 0;
    const blocks = new RecentBlocks(2, () => now);
    blocks.add('10.0.0.1', 60);
    now = 1_000;
    blocks.add('10.0.0.2', 10);
    blocks.add('10.0.0.3', 60);
    expect(blocks.read().map((b) => b.ip)).toEqual(['10.0.0.3', '10.0.0.2']);
    now = 12_000;
    expect(blocks.read().map((b) => b.ip)).toEqual(['10.0.0.3']);
  });
});
