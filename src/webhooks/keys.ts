// Redis keys of the webhook delivery (docs/redis-keys.md). Everything global shares the hash tag
// `{webhooks}`, so the delivery scripts (several of these keys at once) run on Redis Cluster; each tenant's
// outbox stream lives under the tenant's own tag, written in the key mutation's script (store/redis/scripts.ts).

/** SET of tenant ids whose outbox the workers sweep (and PLATFORM_OUTBOX, the platform's). */
export const outboxSetKey = (p: string): string => `${p}{webhooks}:outboxes`;
/** SET of the outboxes written to since a worker last read them (the same members as outboxSetKey). */
export const readyKey = (p: string): string => `${p}{webhooks}:ready`;
/** SET of deleted tenants whose outbox leaves outboxSetKey once the workers have emptied it. */
export const retiredKey = (p: string): string => `${p}{webhooks}:retired`;
/** The member of the outbox set that stands for the platform's outbox (a tenant id starts `ten_`). */
export const PLATFORM_OUTBOX = 'platform';
/** A tenant's outbox, or the platform's (null: events about no tenant, in the `{webhooks}` slot). */
export const outboxKey = (p: string, tenantId: string | null): string => (tenantId === null ? `${p}{webhooks}:outbox` : `${p}{${tenantId}}:outbox`);
export const endpointsKey = (p: string): string => `${p}{webhooks}:endpoints`;
export const dueKey = (p: string): string => `${p}{webhooks}:due`;
export const jobsKey = (p: string): string => `${p}{webhooks}:jobs`;
/** Every dead letter by the time it was dead-lettered: what expires next (`webhooks.deadLetterHours`). */
export const deadKey = (p: string): string => `${p}{webhooks}:dead`;
/**
 * Where the delivery scripts build the per-group and per-endpoint keys below from (all in the `{webhooks}` slot, so
 * a script may name them by their ids): `pending` (hash `g:<group>` / `e:<endpoint>` → jobs waiting), and
 * `dead:g:<group>` / `dead:e:<endpoint>` (sorted sets of dead letters by time).
 */
export const deliveryBase = (p: string): string => `${p}{webhooks}:`;
export const deadGroupKey = (p: string, group: string): string => `${p}{webhooks}:dead:g:${group}`;
export const deadEndpointKey = (p: string, endpointId: string): string => `${p}{webhooks}:dead:e:${endpointId}`;
/** SET of one tenant's endpoint ids: counted and added in one script (its cap). */
export const tenantEndpointsKey = (p: string, tenantId: string): string => `${p}{webhooks}:endpoints:${tenantId}`;
/** A tenant being deleted: no endpoint of it can be created while this exists. */
export const closedKey = (p: string, tenantId: string): string => `${p}{webhooks}:closed:${tenantId}`;
export const logKey = (p: string, endpointId: string): string => `${p}{webhooks}:log:${endpointId}`;
export const healthKey = (p: string): string => `${p}{webhooks}:health`;
export const leaseKey = (p: string, name: string): string => `${p}{webhooks}:lease:${name}`;
/** An event sent once (key.expiring, key.expired): the marker sits in the tenant's slot beside its outbox. */
export const onceKey = (p: string, tenantId: string, marker: string): string => `${p}{${tenantId}}:once:${marker}`;
/** ZSET event id → when it was fanned out, until its outbox entry is acknowledged (redis-queue.ts addJobs). */
export const fannedKey = (p: string): string => `${p}{webhooks}:fanned`;
