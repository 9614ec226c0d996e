import { randomBytes } from 'node:crypto';
import type { RedisOutboxPort } from '../outbox.ts';
import type { AuditInput, StoreEvent } from '../types.ts';
import type { RedisClient } from './connect.ts';

// What a mutation tells others: the invalidation event, evicted here at once and published on the channel to the
// other replicas (and received from them), and the webhook event the mutation's script writes to the tenant's
// outbox.

/** How long ioredis takes, at most, to subscribe again on another Cluster node after losing one; and how long
 *  keygate waits before sending a SUBSCRIBE that failed again. */
const CLUSTER_RESUBSCRIBE_MS = 1_000;

export class RedisEvents {
  readonly channel: string;
  readonly #sub: RedisClient;
  readonly #outbox: RedisOutboxPort | null;
  readonly #placeholder: (tenantId: string) => string;
  /** This process's own subscribers: its mutations reach them before the mutation resolves. */
  readonly #local: Array<(event: StoreEvent) => void> = [];
  /** Marks this process's messages on the channel, so it skips its own echo (it evicted before answering). */
  readonly #origin = randomBytes(9).toString('base64url');
  #closed = false;

  /** `placeholder`: a key in the tenant's slot, named in a script's outbox place when there is no outbox. */
  constructor(subscriber: RedisClient, channel: string, outbox: RedisOutboxPort | null, placeholder: (tenantId: string) => string) {
    this.#sub = subscriber;
    this.channel = channel;
    this.#outbox = outbox;
    this.#placeholder = placeholder;
  }

  get outbox(): RedisOutboxPort | null {
    return this.#outbox;
  }

  /** The tenant's outbox stream, named in every mutation script (a placeholder in its slot when there is none). */
  outboxKey(tenantId: string): string {
    return this.#outbox?.streamKey(tenantId) ?? this.#placeholder(tenantId);
  }

  /**
   * A mutation's event, as the script's ARGV: the event JSON ('' for none) and the outbox cap. Nothing is written
   * outside the tenant's slot for it: the tenant's outbox was made known to the delivery side when the tenant
   * was created (store/outbox.ts), so a failover of any other shard does not stop this mutation.
   */
  eventArgs(tenantId: string, audit: AuditInput | null): [string, number] {
    const event = this.#outbox && audit ? this.#outbox.eventOf(tenantId, audit) : null;
    return event ? [JSON.stringify(event), this.#outbox!.maxEntries] : ['', 0];
  }

  /** After a script that wrote an event (`hook` from eventArgs): the readers are told, without waiting. */
  written(tenantId: string, hook: [string, number]): void {
    if (hook[0]) this.#outbox?.notify(tenantId);
  }

  /**
   * Evicts here before the mutation is answered. The PUBLISH in the script reaches the other replicas (and
   * this one again); on Cluster it travels from the slot's master over the cluster bus to whichever node this
   * process subscribed on, and arrived 20–36 ms after the answer.
   */
  evictHere(event: StoreEvent): void {
    for (const onEvent of this.#local) onEvent(event);
  }

  /** An event as published: the event and the process that published it (`o`; other replicas ignore it). */
  message(event: StoreEvent): string {
    return JSON.stringify({ ...event, o: this.#origin });
  }

  async subscribe(onEvent: (event: StoreEvent) => void, onReset: () => void): Promise<void> {
    this.#local.push(onEvent);
    let connectedBefore = false;
    // ioredis re-subscribes after a reconnect; whatever was published meanwhile is lost, so the cache is
    // cleared (the TTL bounds a lost message's cost, the reset removes even that).
    this.#sub.on('ready', () => {
      if (connectedBefore) onReset();
      connectedBefore = true;
    });
    // On Cluster the client stays ready while ioredis moves the subscription to another node, silently, when
    // its node goes away (a failover). A node leaving the client's view is the sign: once the move is done,
    // a second later, the cache is reset all the same.
    if (this.#sub.isCluster) {
      let timer: NodeJS.Timeout | null = null;
      this.#sub.on('-node', () => {
        if (!connectedBefore) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = null;
          onReset();
        }, CLUSTER_RESUBSCRIBE_MS).unref();
      });
    }
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const { o, ...event } = JSON.parse(message) as StoreEvent & { o?: string };
        if (o !== this.#origin) onEvent(event as StoreEvent);
      } catch {
        onReset();
      }
    });
    await this.#subscribeChannel(onReset);
    connectedBefore = true;
  }

  /**
   * SUBSCRIBE, again every second until it succeeds (then a reset: events may have been missed meanwhile). ioredis
   * Cluster drops a SUBSCRIBE still under way when it moves its subscriber connection — as it does at start-up
   * when the slot map replaces the configured nodes — and would never send it again; the first failure is
   * still thrown, so start-up says the subscription is pending.
   */
  async #subscribeChannel(onReset: () => void): Promise<void> {
    try {
      await this.#sub.subscribe(this.channel);
    } catch (err) {
      const retry = setTimeout(() => {
        if (!this.#closed) void this.#subscribeChannel(onReset).then(onReset, () => {});
      }, CLUSTER_RESUBSCRIBE_MS);
      retry.unref();
      throw err;
    }
  }

  /** No more SUBSCRIBE retries: the connection is closing. */
  close(): void {
    this.#closed = true;
  }
}
