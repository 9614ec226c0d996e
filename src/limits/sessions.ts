import type { RedisClient } from '../store/redis/redis-store.ts';

// Live WebSocket sessions per key and per tenant, counted across replicas (SPEC §5 maxConcurrentConnections).
// Each session is a member of two sorted sets scored by a lease expiry; replicas renew their leases, so a
// crashed replica's sessions stop counting once their leases lapse instead of leaking forever.

export type SlotResult = 'ok' | 'key' | 'tenant';

export interface SessionSlots {
  acquire(tenantId: string, keyId: string, sessionId: string, keyLimit: number | null, tenantLimit: number | null): Promise<SlotResult>;
  release(tenantId: string, keyId: string, sessionId: string): Promise<void>;
  renew(sessions: Array<{ tenantId: string; keyId: string; sessionId: string }>): Promise<void>;
}

export const LEASE_MS = 60_000;

// KEYS: keySessions, tenantSessions. ARGV: sessionId, keyLimit (0 = none), tenantLimit (0 = none), leaseMs.
const acquireLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local keyLimit = tonumber(ARGV[2])
local tenantLimit = tonumber(ARGV[3])
if keyLimit > 0 and redis.call('ZCARD', KEYS[1]) >= keyLimit then return 1 end
if tenantLimit > 0 and redis.call('ZCARD', KEYS[2]) >= tenantLimit then return 2 end
local expires = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('ZADD', KEYS[2], expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0`;

// KEYS: keySessions, tenantSessions. ARGV: sessionId, leaseMs.
const renewLua = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0`;

type Scripted = RedisClient & {
  kgSlotAcquire(k1: string, k2: string, id: string, keyLimit: number, tenantLimit: number, lease: number): Promise<number>;
  kgSlotRenew(k1: string, k2: string, id: string, lease: number): Promise<number>;
};

export class RedisSessionSlots implements SessionSlots {
  readonly #r: Scripted;
  readonly #p: string;

  constructor(redis: RedisClient, prefix: string) {
    redis.defineCommand('kgSlotAcquire', { numberOfKeys: 2, lua: acquireLua });
    redis.defineCommand('kgSlotRenew', { numberOfKeys: 2, lua: renewLua });
    this.#r = redis as Scripted;
    this.#p = prefix;
  }

  // Both sets carry the tenant's hash tag, so the script runs on one Cluster slot.
  #keySet = (t: string, k: string) => `${this.#p}{${t}}:ws:${k}`;
  #tenantSet = (t: string) => `${this.#p}{${t}}:ws`;

  async acquire(tenantId: string, keyId: string, sessionId: string, keyLimit: number | null, tenantLimit: number | null): Promise<SlotResult> {
    const r = await this.#r.kgSlotAcquire(this.#keySet(tenantId, keyId), this.#tenantSet(tenantId), sessionId, keyLimit ?? 0, tenantLimit ?? 0, LEASE_MS);
    return r === 1 ? 'key' : r === 2 ? 'tenant' : 'ok';
  }

  async release(tenantId: string, keyId: string, sessionId: string): Promise<void> {
    await Promise.all([this.#r.zrem(this.#keySet(tenantId, keyId), sessionId), this.#r.zrem(this.#tenantSet(tenantId), sessionId)]);
  }

  async renew(sessions: Array<{ tenantId: string; keyId: string; sessionId: string }>): Promise<void> {
    await Promise.all(sessions.map((s) => this.#r.kgSlotRenew(this.#keySet(s.tenantId, s.keyId), this.#tenantSet(s.tenantId), s.sessionId, LEASE_MS)));
  }
}

/**
 * The embedded store's equivalent: one process, so plain sets suffice. Only keys and tenants with a live session
 * have a set (an emptied one is dropped), so the maps are bounded by the live sessions.
 */
export class MemorySessionSlots implements SessionSlots {
  readonly #byKey = new Map<string, Set<string>>();
  readonly #byTenant = new Map<string, Set<string>>();

  #add(map: Map<string, Set<string>>, id: string, sessionId: string): void {
    const s = map.get(id);
    if (s) s.add(sessionId);
    else map.set(id, new Set([sessionId]));
  }

  #remove(map: Map<string, Set<string>>, id: string, sessionId: string): void {
    const s = map.get(id);
    if (s?.delete(sessionId) && s.size === 0) map.delete(id);
  }

  /** Keys and tenants holding a set (for tests: bounded by the live sessions). */
  get size(): number {
    return this.#byKey.size + this.#byTenant.size;
  }

  async acquire(tenantId: string, keyId: string, sessionId: string, keyLimit: number | null, tenantLimit: number | null): Promise<SlotResult> {
    if (keyLimit !== null && (this.#byKey.get(keyId)?.size ?? 0) >= keyLimit) return 'key';
    if (tenantLimit !== null && (this.#byTenant.get(tenantId)?.size ?? 0) >= tenantLimit) return 'tenant';
    this.#add(this.#byKey, keyId, sessionId);
    this.#add(this.#byTenant, tenantId, sessionId);
    return 'ok';
  }

  async release(tenantId: string, keyId: string, sessionId: string): Promise<void> {
    this.#remove(this.#byKey, keyId, sessionId);
    this.#remove(this.#byTenant, tenantId, sessionId);
  }

  async renew(): Promise<void> {}
}
