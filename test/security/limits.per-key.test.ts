import { beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, proxied, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// Rate windows are counted per key (and per plan), never per limit value. A key that could start an empty
// window by changing its own limit (each self-PATCH lowering requestsPerMinute by one) escaped it: with a limit
// of 10, 45 requests passed. Both stores: Redis (the count in Redis) and the embedded one (the count in process).

const servers = useServers();
const stores: Record<string, KeygateProcess> = {};
beforeAll(async () => {
  [stores.redis, stores.embedded] = await Promise.all([servers.keygate(), servers.keygate({ redisUrl: null })]);
});

describe.each(['redis', 'embedded'])('rate windows on the %s store', (store) => {
  it('a key lowering its own limit keeps the count it has made', async () => {
    const kg = stores[store]!;
    const { key } = await createTenant(kg, { name: `lower-${store}`, plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 10 } });
    expect(made.status).toBe(201);
    const mine = made.body.key as string;
    let passed = 0;
    for (let limit = 9; limit >= 1; limit--) {
      for (let i = 0; i < 5; i++) if ((await proxied(kg, '/v1/x', { 'x-api-key': mine })).status === 200) passed++;
      const patch = await self(kg, mine, 'PATCH', `/api-keys/${made.body.id}`, { rateLimit: { requestsPerMinute: limit } });
      if (patch.status === 200) passed++;
      else expect(patch.status).toBe(429);
    }
    console.log(`${store}: ${passed} requests passed a 10/minute key that lowered its own limit 9 times`);
    expect(passed).toBeLessThanOrEqual(10);
  });

  it('a raised limit applies to the count already made', async () => {
    const kg = stores[store]!;
    const { tenant, key } = await createTenant(kg, { name: `raise-${store}`, plan: 'pro' });
    const made = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 5 } });
    const mine = made.body.key as string;
    const run = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await proxied(kg, '/v1/x', { 'x-api-key': mine })).status);
      return out;
    };
    expect(await run(6)).toEqual([200, 200, 200, 200, 200, 429]);
    const raised = await admin(kg, 'PATCH', `/tenants/${tenant.id}/api-keys/${made.body.id}`, { rateLimit: { requestsPerMinute: 8 } });
    expect(raised.status).toBe(200);
    // 6 counted (the refusal too, as rate windows count every attempt): 2 more fit under 8.
    expect(await run(3)).toEqual([200, 200, 429]);
  });
});
