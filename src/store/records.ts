import type { KeyHash, StoredKey } from '../keys/types.ts';
import type { NewSecret, Page, StoreEvent } from './types.ts';

// Rules shared by every KeyStore implementation, so the Redis and memory stores cannot drift apart.

/** When `hash` stops verifying `key` (ms since epoch, or null for never); undefined if it does not verify. */
export function hashExpiry(key: StoredKey, hash: string, now = Date.now()): number | null | undefined {
  const entry = key.hashes.find((h) => h.hash === hash);
  if (!entry) return undefined;
  if (entry.expiresAt === null) return null;
  const at = Date.parse(entry.expiresAt);
  return at > now ? at : undefined;
}

/**
 * A key after a rotation: the new value current; the old current one kept for `graceSeconds`, if any; and the
 * session tokens minted before now set to stop when that old value stops (tokens older than the previous
 * rotation stop at once), so a token never outlives the value that was current when it was minted.
 */
export function rotated(key: StoredKey, secret: NewSecret, graceSeconds: number, now = Date.now()): StoredKey {
  const at = new Date(now).toISOString();
  const graceUntil = new Date(now + graceSeconds * 1000).toISOString();
  const kept = graceSeconds > 0
    ? key.hashes
        .filter((h) => h.expiresAt === null || Date.parse(h.expiresAt) > now)
        .map((h) => ({ hash: h.hash, expiresAt: h.expiresAt ?? graceUntil }))
    : [];
  const hashes: KeyHash[] = [{ hash: secret.hash, expiresAt: null }, ...kept];
  const previous = key.tokensRetiring?.issuedBefore ?? null;
  const notBefore = key.tokensNotBefore ?? null;
  const tokensNotBefore = previous !== null && (notBefore === null || Date.parse(previous) > Date.parse(notBefore)) ? previous : notBefore;
  return { ...key, prefix: secret.prefix, hashes, tokensNotBefore, tokensRetiring: { issuedBefore: at, at: graceUntil }, updatedAt: at };
}

/** Hashes that stop verifying with this rotation (to delete before anything else is written). */
export function droppedHashes(before: KeyHash[], after: KeyHash[]): string[] {
  const keep = new Set(after.map((h) => h.hash));
  return before.filter((h) => !keep.has(h.hash)).map((h) => h.hash);
}

export const keyEvent = (key: StoredKey): StoreEvent => ({
  kind: 'key',
  tenantId: key.tenantId,
  keyId: key.id,
  hashes: key.hashes.map((h) => h.hash),
});

/** Cursor pagination over ids sorted ascending: `cursor` is the last id of the previous page. */
export function pageOf<T>(sortedIds: string[], page: { limit: number; cursor: string | null }, get: (id: string) => T | undefined): Page<T> {
  const start = page.cursor === null ? 0 : sortedIds.findIndex((id) => id > page.cursor!);
  const ids = start < 0 ? [] : sortedIds.slice(start, start + page.limit);
  const data = ids.map(get).filter((v): v is T => v !== undefined);
  const more = start >= 0 && start + page.limit < sortedIds.length;
  return { data, nextCursor: more ? (ids.at(-1) ?? null) : null };
}
