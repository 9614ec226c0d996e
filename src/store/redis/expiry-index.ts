import type { StoredKey } from '../../keys/types.ts';
import { firstExpiryDue, type DueExpiry, type ExpiryIndex } from '../expiry.ts';
import type { RedisClient } from './connect.ts';
import { expiryIndexKey } from './keyspace.ts';

// The expiry index in Redis (store/expiry.ts): `{ten}:exp`, a sorted set of the tenant's key ids by when their next
// expiry event is due, in the tenant's slot beside its key records, so the scan's conditional move (a script over
// the index and the key record) runs on Cluster. `expiry-index` (its own slot) says every key is in it.

/** KEYS: index, key record. ARGV: keyId, expiresAt seen ('' for none), dueAt ('' to take it out). → 1 | 0 (changed meanwhile) */
const reschedule = `
local raw = redis.call('GET', KEYS[2])
if not raw then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
local e = cjson.decode(raw).expiresAt
if e == nil or e == cjson.null then e = '' end
if e ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1`;

export class RedisExpiryIndex implements ExpiryIndex {
  readonly #r: RedisClient;
  readonly #p: string;
  readonly #record: (tenantId: string, keyId: string) => string;

  /** `record`: the Redis key of a key record (the store's keyspace). */
  constructor(client: RedisClient, prefix: string, record: (tenantId: string, keyId: string) => string) {
    this.#r = client;
    this.#p = prefix;
    this.#record = record;
    this.#r.defineCommand('kg_rescheduleExpiry', { numberOfKeys: 2, lua: reschedule });
  }

  /** After a key is written: its first event's time, unless it is in the index earlier (ZADD LT). */
  async note(key: StoredKey): Promise<void> {
    const due = firstExpiryDue(key);
    if (due !== null) await this.#r.zadd(expiryIndexKey(this.#p, key.tenantId), 'LT', due, key.id);
  }

  /** After a key is revoked: its id is never used again. */
  async forget(tenantId: string, keyId: string): Promise<void> {
    await this.#r.zrem(expiryIndexKey(this.#p, tenantId), keyId);
  }

  indexExpiry(key: StoredKey): Promise<void> {
    return this.note(key);
  }

  async dueExpiries(tenantIds: string[], now: number, limit: number): Promise<DueExpiry[]> {
    // One command per tenant, sent together (on Cluster each goes to its tenant's node).
    const rows = await Promise.all(tenantIds.map((t) => this.#r.zrangebyscore(expiryIndexKey(this.#p, t), '-inf', now, 'LIMIT', 0, limit)));
    return rows.flatMap((ids, i) => ids.map((keyId) => ({ tenantId: tenantIds[i]!, keyId })));
  }

  async rescheduleExpiry(tenantId: string, keyId: string, expiresAt: string | null, dueAt: number | null): Promise<void> {
    const cmd = (this.#r as unknown as Record<string, (...a: Array<string | number>) => Promise<number>>).kg_rescheduleExpiry!;
    await cmd.call(this.#r, expiryIndexKey(this.#p, tenantId), this.#record(tenantId, keyId), keyId, expiresAt ?? '', dueAt ?? '');
  }

  async expiryIndexBuilt(): Promise<boolean> {
    return (await this.#r.exists(`${this.#p}expiry-index`)) === 1;
  }

  async markExpiryIndexBuilt(): Promise<void> {
    await this.#r.set(`${this.#p}expiry-index`, '1');
  }
}
