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

/** The embedded store's equivalent: one process, so plain sets suffice. */
export class MemorySessionSlots implements SessionSlots {
  readonly #byKey = new Map<string, Set<string>>();
  readonly #byTenant = new Map<string, Set<string>>();

  #set(map: Map<string, Set<string>>, id: string): Set<string> {
    let s = map.get(id);
    if (!s) map.set(id, (s = new Set()));
    return s;
  }

  async acquire(tenantId: string, keyId: string, sessionId: string, keyLimit: number | null, tenantLimit: number | null): Promise<SlotResult> {
    const k = this.#set(this.#byKey, keyId);
    const t = this.#set(this.#byTenant, tenantId);
    if (keyLimit !== null && k.size >= keyLimit) return 'key';
    if (tenantLimit !== null && t.size >= tenantLimit) return 'tenant';
    k.add(sessionId);
    t.add(sessionId);
    return 'ok';
  }

  async release(tenantId: string, keyId: string, sessionId: string): Promise<void> {
    this.#byKey.get(keyId)?.delete(sessionId);
    this.#byTenant.get(tenantId)?.delete(sessionId);
  }

  async renew(): Promise<void> {}
}
