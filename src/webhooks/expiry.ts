import type { Logger } from '../ops/logger.ts';
import type { StoredKey } from '../keys/types.ts';
import type { KeyStore } from '../store/types.ts';
import { EXPIRY_NOTICE_MS } from '../store/expiry.ts';
import { newMessageId, type WebhookEvent } from './events.ts';
import type { WebhookQueue } from './types.ts';

const DAY_MS = 86_400_000;
const PAGE = 100;
/** How long after its expiry a key still gets its key.expired (a key that expired before webhooks did gets none). */
const EXPIRED_WINDOW_MS = 7 * DAY_MS;

/**
 * When the key's next expiry event falls due after one due at `now` was sent (or none was due yet): the expiry
 * index's next time for it (store/expiry.ts); null after key.expired.
 */
export function nextExpiryDue(key: StoredKey, now: number): number | null {
  if (key.expiresAt === null) return null;
  const at = Date.parse(key.expiresAt);
  const left = at - now;
  if (left > EXPIRY_NOTICE_MS) return at - EXPIRY_NOTICE_MS;
  if (left > DAY_MS) return at - DAY_MS;
  if (left > 0) return at;
  return null;
}

/** The once-only event a key is due, if any: key.expiring 7 and 1 days before, key.expired after. */
export function expiryEventOf(key: StoredKey, now: number): { type: 'key.expiring' | 'key.expired'; days: 1 | 7 | null } | null {
  if (key.expiresAt === null) return null;
  const left = Date.parse(key.expiresAt) - now;
  if (left <= 0) return left > -EXPIRED_WINDOW_MS ? { type: 'key.expired', days: null } : null;
  if (left <= DAY_MS) return { type: 'key.expiring', days: 1 };
  if (left <= 7 * DAY_MS) return { type: 'key.expiring', days: 7 };
  return null;
}

/**
 * key.expiring and key.expired: a periodic scan, by one replica at a time (a fleet-wide lease per interval), of
 * the expiry index (store/expiry.ts): per tenant, the keys whose next expiry event is due. It costs one index
 * read per tenant and a few commands per event due, not a read of every key. Each event is written once per key,
 * kind and expiry date: the tenant's marker and its outbox entry are written by one script
 * (RedisWebhookQueue.enqueueOnce), so a replica that dies mid-scan leaves the rest to the next scan and never
 * sends one twice. Keys written before the index existed are put in it by one full scan (`scanAll`), once.
 */
export class ExpiryScanner {
  readonly #store: KeyStore;
  readonly #queue: WebhookQueue;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(store: KeyStore, queue: WebhookQueue, intervalSeconds: number, logger: Logger) {
    this.#store = store;
    this.#queue = queue;
    this.#intervalMs = intervalSeconds * 1000;
    this.#logger = logger;
  }

  start(): void {
    const tick = () => {
      this.#running = this.scan()
        .then(() => {})
        .catch((err: unknown) => this.#logger.warn({ err }, 'key expiry scan failed'))
        .finally(() => {
          this.#running = null;
        });
    };
    this.#timer = setInterval(tick, this.#intervalMs);
    tick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  /** One scan, unless another replica holds this interval's lease. Returns the events written. */
  async scan(now = Date.now()): Promise<number> {
    if (!(await this.#queue.lease('expiry-scan', this.#intervalMs * 0.9))) return 0;
    if (!(await this.#store.expiryIndexBuilt())) {
      const written = await this.scanAll(now, true);
      await this.#store.markExpiryIndexBuilt();
      return written;
    }
    return this.scanIndexed(now);
  }

  /** The keys the expiry index says are due, a page of tenants at a time. */
  async scanIndexed(now: number): Promise<number> {
    let written = 0;
    let tenants: string | null = null;
    do {
      const page = await this.#store.listTenants({ limit: PAGE, cursor: tenants });
      let ids = page.data.map((t) => t.id);
      while (ids.length) {
        const due = await this.#store.dueExpiries(ids, now, PAGE);
        for (const { tenantId, keyId } of due) {
          const key = await this.#store.getKey(tenantId, keyId);
          if (key && (await this.#emit(key, now))) written++;
          // Moved on to its next event (or out), unless its expiry changed meanwhile (then the write that
          // changed it put it in the index again).
          await this.#store.rescheduleExpiry(tenantId, keyId, key?.expiresAt ?? null, key ? nextExpiryDue(key, now) : null);
        }
        // A tenant with a full page due has more: read again (what was handled has moved on).
        const full = new Set(due.map((d) => d.tenantId).filter((t, _, all) => all.filter((x) => x === t).length >= PAGE));
        ids = ids.filter((t) => full.has(t));
      }
      tenants = page.nextCursor;
    } while (tenants !== null);
    return written;
  }

  /** Every key of every tenant (one page read per 100 keys); `index`: also puts each in the expiry index. */
  async scanAll(now: number, index = false): Promise<number> {
    let written = 0;
    let tenants: string | null = null;
    do {
      const page = await this.#store.listTenants({ limit: PAGE, cursor: tenants });
      for (const tenant of page.data) {
        let keys: string | null = null;
        do {
          const batch = await this.#store.listKeys(tenant.id, { limit: PAGE, cursor: keys });
          for (const key of batch.data) {
            if (await this.#emit(key, now)) written++;
            // In the index at its next event after this scan's (what this scan sent is not visited again).
            if (index && key.expiresAt !== null) await this.#store.rescheduleExpiry(key.tenantId, key.id, key.expiresAt, nextExpiryDue(key, now));
          }
          keys = batch.nextCursor;
        } while (keys !== null);
      }
      tenants = page.nextCursor;
    } while (tenants !== null);
    return written;
  }

  async #emit(key: StoredKey, now: number): Promise<boolean> {
    const due = expiryEventOf(key, now);
    if (!due) return false;
    const expiresAt = Date.parse(key.expiresAt!);
    const event: WebhookEvent = {
      id: newMessageId(),
      type: due.type,
      timestamp: new Date(now).toISOString(),
      data: { tenantId: key.tenantId, keyId: key.id, name: key.name, expiresAt: key.expiresAt, ...(due.days ? { days: due.days } : {}) },
    };
    // Per expiry date: a key whose expiry is moved gets its warnings again for the new date.
    const marker = `${key.id}:${due.type}:${due.days ?? 0}:${expiresAt}`;
    return this.#queue.enqueueOnce(key.tenantId, marker, expiresAt + EXPIRED_WINDOW_MS + DAY_MS - now, event);
  }
}
