// Redis keys of the webhook delivery (docs/redis-keys.md). Everything global shares the hash tag
// `{webhooks}`, so the delivery scripts (several of these keys at once) run on Redis Cluster; each tenant's
// outbox stream lives under the tenant's own tag, written in the key mutation's script (store/redis/scripts.ts).

// The outbox streams belong to the store's keyspace (the key mutation's script writes them).
export { outboxKey, outboxSetKey, PLATFORM_OUTBOX } from '../store/outbox.ts';
export const endpointsKey = (p: string): string => `${p}{webhooks}:endpoints`;
export const dueKey = (p: string): string => `${p}{webhooks}:due`;
export const jobsKey = (p: string): string => `${p}{webhooks}:jobs`;
export const deadKey = (p: string): string => `${p}{webhooks}:dead`;
export const logKey = (p: string, endpointId: string): string => `${p}{webhooks}:log:${endpointId}`;
export const healthKey = (p: string): string => `${p}{webhooks}:health`;
export const leaseKey = (p: string, name: string): string => `${p}{webhooks}:lease:${name}`;
/** An event sent once (key.expiring, key.expired): the marker sits in the tenant's slot beside its outbox. */
export const onceKey = (p: string, tenantId: string, marker: string): string => `${p}{${tenantId}}:once:${marker}`;
