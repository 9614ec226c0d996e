// Redis keys of the webhook delivery (issue 17; docs/redis-keys.md). Everything global shares the hash tag
// `{webhooks}`, so the delivery scripts (several of these keys at once) run on Redis Cluster; each tenant's
// outbox stream lives under the tenant's own tag, written in the key mutation's script (store/redis/scripts.ts).

/** SET of tenant ids whose outbox the workers read (and PLATFORM_OUTBOX, the platform's). */
export const outboxSetKey = (p: string): string => `${p}{webhooks}:outboxes`;
/** The member of the outbox set that stands for the platform's outbox (a tenant id starts `ten_`). */
export const PLATFORM_OUTBOX = 'platform';
/** A tenant's outbox, or the platform's (null: events about no tenant, in the `{webhooks}` slot). */
export const outboxKey = (p: string, tenantId: string | null): string => (tenantId === null ? `${p}{webhooks}:outbox` : `${p}{${tenantId}}:outbox`);
export const endpointsKey = (p: string): string => `${p}{webhooks}:endpoints`;
export const dueKey = (p: string): string => `${p}{webhooks}:due`;
export const jobsKey = (p: string): string => `${p}{webhooks}:jobs`;
export const deadKey = (p: string): string => `${p}{webhooks}:dead`;
export const logKey = (p: string, endpointId: string): string => `${p}{webhooks}:log:${endpointId}`;
export const healthKey = (p: string): string => `${p}{webhooks}:health`;
export const leaseKey = (p: string, name: string): string => `${p}{webhooks}:lease:${name}`;
/** An event sent once (key.expiring, key.expired): the marker sits in the tenant's slot beside its outbox. */
export const onceKey = (p: string, tenantId: string, marker: string): string => `${p}{${tenantId}}:once:${marker}`;
/** ZSET event id → when it was fanned out, until its outbox entry is acknowledged (redis-queue.ts addJobs). */
export const fannedKey = (p: string): string => `${p}{webhooks}:fanned`;
