import type { Logger } from '../ops/logger.ts';
import type { OutboxProvider, RedisOutboxPort } from '../store/outbox.ts';
import type { RedisClient } from '../store/redis/connect.ts';
import type { KeyStore } from '../store/types.ts';
import type { AuditInput } from '../store/types.ts';
import { eventOfAudit, type WebhookEvent } from './events.ts';
import { outboxKey, outboxSetKey, readyKey } from './keys.ts';
import { MemoryOutbox, MemoryWebhookQueue } from './memory-queue.ts';
import { RedisWebhookQueue } from './redis-queue.ts';
import type { WebhookCaps, WebhookQueue } from './types.ts';

/** How often every tenant is named in the set of outboxes again (see OutboxRegistrar). */
const REGISTER_EVERY_MS = 5 * 60_000;
/** Tenants read and named per round trip. */
const REGISTER_PAGE = 1_000;

/**
 * The webhook side of the store's outbox port (store/outbox.ts): key mutations' events go to their tenant's
 * stream, `{<tenantId>}:outbox`, written by the mutation's script in the tenant's own slot. The delivery workers
 * find those streams two ways (redis-queue.ts readOutbox): the set `{webhooks}:ready`, which a mutation's
 * notify names its tenant in once its script has written the event (not awaited: the mutation never waits on
 * the `{webhooks}` slot, and a lost signal only delays the event), and a sweep of `{webhooks}:outboxes`, which
 * names a tenant when it is created (and again on every OutboxRegistrar round), never on a mutation's path.
 */
export class RedisOutbox implements RedisOutboxPort {
  readonly #r: RedisClient;
  readonly #p: string;
  readonly #logger: Logger | null;
  readonly maxEntries: number;

  constructor(client: RedisClient, prefix: string, maxEntries: number, logger: Logger | null = null) {
    this.#r = client;
    this.#p = prefix;
    this.maxEntries = maxEntries;
    this.#logger = logger;
  }

  notify(tenantId: string): void {
    this.#r.sadd(readyKey(this.#p), tenantId).catch((err: unknown) => this.#logger?.warn({ err, tenantId }, 'webhook outbox: the ready signal was lost; the sweep delivers the event later'));
  }

  eventOf(tenantId: string, audit: AuditInput): WebhookEvent | null {
    return eventOfAudit(tenantId, audit);
  }

  streamKey(tenantId: string): string {
    return outboxKey(this.#p, tenantId);
  }

  async register(tenantId: string): Promise<void> {
    await this.registerAll([tenantId]);
  }

  async registerAll(tenantIds: string[]): Promise<void> {
    if (tenantIds.length) await this.#r.sadd(outboxSetKey(this.#p), ...tenantIds);
  }
}

/** The outboxes and the delivery queue of one process, for whichever store it opens. */
export class WebhookOutboxes implements OutboxProvider {
  readonly #prefix: string;
  readonly #maxEntries: number;
  readonly #caps: WebhookCaps;
  readonly #logger: Logger | null;
  #memory: MemoryOutbox | null = null;
  #redis: RedisOutbox | null = null;

  constructor(prefix: string, maxEntries: number, caps: WebhookCaps, logger: Logger | null = null) {
    this.#prefix = prefix;
    this.#maxEntries = maxEntries;
    this.#caps = caps;
    this.#logger = logger;
  }

  memory(): MemoryOutbox {
    return (this.#memory ??= new MemoryOutbox());
  }

  redis(client: RedisClient): RedisOutbox {
    return (this.#redis ??= new RedisOutbox(client, this.#prefix, this.#maxEntries, this.#logger));
  }

  /** The delivery queue reading the outbox the store was given (Redis when `client` is given). */
  queue(client: RedisClient | null): WebhookQueue {
    return client ? new RedisWebhookQueue(client, this.#prefix, this.#maxEntries, this.#caps) : new MemoryWebhookQueue(this.memory(), this.#caps);
  }

  /** The Redis outbox, once the store has asked for it: the registrar's. */
  get redisOutbox(): RedisOutbox | null {
    return this.#redis;
  }
}

/**
 * Names every tenant in the set of outboxes, at start and every REGISTER_EVERY_MS: a tenant is named when it is
 * created, but not one created before webhooks were turned on, or by a replica that had them off, or whose
 * naming was lost with a `{webhooks}` master that died before replicating it. Its events wait in its stream
 * meanwhile (capped), and are delivered once it is named. A round costs one page of tenants read and one SADD
 * per REGISTER_PAGE tenants.
 */
export class OutboxRegistrar {
  readonly #outbox: RedisOutbox;
  readonly #store: KeyStore;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<void> | null = null;

  constructor(outbox: RedisOutbox, store: KeyStore, logger: Logger) {
    this.#outbox = outbox;
    this.#store = store;
    this.#logger = logger;
  }

  start(): void {
    const tick = () => {
      this.#round = this.registerAll()
        .catch((err: unknown) => this.#logger.warn({ err }, 'webhook outboxes: naming the tenants failed; tried again later'))
        .finally(() => (this.#round = null));
      this.#timer = setTimeout(tick, REGISTER_EVERY_MS);
      this.#timer.unref();
    };
    tick();
  }

  async registerAll(): Promise<void> {
    let cursor: string | null = null;
    do {
      const page = await this.#store.listTenants({ cursor, limit: REGISTER_PAGE });
      await this.#outbox.registerAll(page.data.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    await this.#round;
  }
}
