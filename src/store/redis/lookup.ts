import type { StoredKey, Tenant } from '../../keys/types.ts';
import { hashExpiry } from '../records.ts';
import type { RefreshRef, Verification } from '../types.ts';
import { named } from './command.ts';
import type { RedisClient } from './connect.ts';
import type { Keyspace } from './keyspace.ts';

// The reads on the hot path: a key's verification by its hash (a cache miss), and the key cache's periodic
// refresh of many at once.

/** Keys per MGET of a cache refresh: a few hundred KB per reply at most. */
const MGET_CHUNK = 500;

export class RedisLookups {
  readonly #r: RedisClient;
  readonly #ks: Keyspace;

  constructor(client: RedisClient, keyspace: Keyspace) {
    this.#r = client;
    this.#ks = keyspace;
  }

  lookup(hash: string): Promise<Verification | null> {
    return named('lookup', (async () => {
      const ref = await this.#r.get(this.#ks.verification(hash));
      if (!ref) return null;
      const { t, k } = JSON.parse(ref) as { t: string; k: string };
      const [rawKey, rawTenant] = await this.#r.mget(this.#ks.key(t, k), this.#ks.tenant(t));
      if (!rawKey || !rawTenant) return null;
      const key = JSON.parse(rawKey) as StoredKey;
      // A verification record left behind by an interrupted write never outlives its key record.
      const hashExpiresAt = hashExpiry(key, hash);
      if (hashExpiresAt === undefined) return null;
      return { key, tenant: JSON.parse(rawTenant) as Tenant, hashExpiresAt };
    })());
  }

  refresh(refs: RefreshRef[]): Promise<Array<Verification | null>> {
    return named('refresh', (async () => {
      if (refs.length === 0) return [];
      // Both reads at once: an answer needs the verification record AND the key record listing the hash (a
      // revocation removes the first before the second, a rotation drops old values' records before the key
      // changes), so a mutation between the two reads can only make the answer null, which a re-read settles.
      // On Cluster each verification record has its own slot: an MGET of one key each (not a GET, so that MONITOR
      // tells a refresh from a lookup: bench/redis-count.ts).
      const vr = refs.map((r) => this.#ks.verification(r.hash));
      const pointers = this.#r.isCluster ? Promise.all(vr.map(async (k) => (await this.#r.mget(k))[0] ?? null)) : this.#mgetChunked(vr);
      const byTenant = new Map<string, Set<string>>();
      for (const r of refs) {
        let ids = byTenant.get(r.tenantId);
        if (!ids) byTenant.set(r.tenantId, (ids = new Set()));
        ids.add(r.keyId);
      }
      // One tenant's records share a slot: its tenant record first, then its keys (a lookup's MGET names the key first).
      const records = new Map<string, string | null>();
      const reads = [...byTenant].flatMap(([t, ids]) => {
        const keyIds = [...ids];
        const chunks: Array<Promise<void>> = [];
        for (let i = 0; i < keyIds.length; i += MGET_CHUNK) {
          const chunk = keyIds.slice(i, i + MGET_CHUNK);
          chunks.push(this.#r.mget(this.#ks.tenant(t), ...chunk.map((k) => this.#ks.key(t, k))).then(([tenant, ...keys]) => {
            records.set(this.#ks.tenant(t), tenant ?? null);
            chunk.forEach((k, j) => records.set(this.#ks.key(t, k), keys[j] ?? null));
          }));
        }
        return chunks;
      });
      const [refsNow] = await Promise.all([pointers, Promise.all(reads)]);
      return refs.map((r, i): Verification | null => {
        const pointer = refsNow[i];
        if (!pointer) return null;
        const { t, k } = JSON.parse(pointer) as { t: string; k: string };
        const rawKey = records.get(this.#ks.key(r.tenantId, r.keyId));
        const rawTenant = records.get(this.#ks.tenant(r.tenantId));
        if (t !== r.tenantId || k !== r.keyId || !rawKey || !rawTenant) return null;
        const key = JSON.parse(rawKey) as StoredKey;
        const hashExpiresAt = hashExpiry(key, r.hash);
        if (hashExpiresAt === undefined) return null;
        return { key, tenant: JSON.parse(rawTenant) as Tenant, hashExpiresAt };
      });
    })());
  }

  /** MGET of keys in any slots (standalone and Sentinel only), in commands of at most MGET_CHUNK keys. */
  async #mgetChunked(keys: string[]): Promise<Array<string | null>> {
    const parts: Array<Promise<Array<string | null>>> = [];
    for (let i = 0; i < keys.length; i += MGET_CHUNK) parts.push(this.#r.mget(keys.slice(i, i + MGET_CHUNK)));
    return (await Promise.all(parts)).flat();
  }
}
