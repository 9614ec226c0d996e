import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createTenant, expectError, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Minting cannot create quota: a key's children count against every monthly quota of their creator chain.
// A key with `requestsPerMonth: 5` passed 20 requests by minting a child, using it up, revoking it and minting
// the next (each child had fresh counters); a key with one session minute could open a session per child.
// Both paths (minting and using) on both stores (Redis and the embedded one), for requests and session minutes.

let redis: RedisServer;
let upstream: WebSocketServer;
const stores: Record<string, KeygateProcess> = {};

const none = { default: null, max: null };
const config = {
  plans: {
    metered: {
      maxKeys: 20, requestsPerMinute: none, requestsPerDay: none, maxConcurrentConnections: none,
      requestsPerMonth: { default: null, max: 1_000_000 }, sessionMinutesPerMonth: { default: null, max: 1_000 }, maxInFlight: null,
    },
  },
};

beforeAll(async () => {
  redis = await startRedis();
  upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => upstream.once('listening', r));
  upstream.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  [stores.redis, stores.embedded] = await Promise.all([
    startKeygate({ redisUrl: redis.url, upstream: upstreamUrl, config }),
    startKeygate({ redisUrl: null, upstream: upstreamUrl, config }),
  ]);
});
afterAll(async () => {
  await Promise.all(Object.values(stores).map((kg) => kg.stop()));
  upstream?.close();
  await redis?.close();
});

function open(kg: KeygateProcess, key: string): Promise<{ ws: WebSocket; status: number; code?: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/x/stream`, { headers: { 'x-api-key': key } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ ws, status: res.statusCode ?? 0, code: JSON.parse(body).error?.code }));
    });
    ws.once('error', reject);
  });
}

/** Forwarded by keygate (the upstream here speaks only WebSocket, so it answers a plain request 426). */
async function admitted(kg: KeygateProcess, key: string): Promise<boolean> {
  const r = await proxied(kg, '/v1/x', { 'x-api-key': key });
  if (r.status === 426) return true;
  expectError(r, 429, 'quota_exceeded');
  return false;
}

describe.each(['redis', 'embedded'])('children and their creator chain on the %s store', (store) => {
  it('a key with requestsPerMonth 5 gets 5 requests through mint-use-revoke cycles, and none of its own after', async () => {
    const kg = stores[store]!;
    const { key: root } = await createTenant(kg, { name: `chain-${store}`, plan: 'metered' });
    const parent = await self(kg, root, 'POST', '/api-keys', { name: 'parent', quota: { requestsPerMonth: 5 } });
    expect(parent.status).toBe(201);
    let passed = 0;
    for (let cycle = 0; cycle < 4; cycle++) {
      const child = await self(kg, parent.body.key, 'POST', '/api-keys', { name: `child${cycle}` });
      expect(child.status).toBe(201);
      // A grandchild too: the chain is every creator, not only the nearest.
      const grandchild = await self(kg, child.body.key, 'POST', '/api-keys', { name: `grandchild${cycle}` });
      expect(grandchild.status).toBe(201);
      for (const k of [child.body.key, grandchild.body.key]) {
        for (let i = 0; i < 3; i++) if (await admitted(kg, k)) passed++;
      }
      expect((await self(kg, parent.body.key, 'DELETE', `/api-keys/${child.body.id}`)).status).toBe(204);
      expect((await self(kg, parent.body.key, 'DELETE', `/api-keys/${grandchild.body.id}`)).status).toBe(204);
    }
    console.log(`${store}: ${passed} requests passed through children of a key with requestsPerMonth 5`);
    expect(passed).toBe(5);
    expectError(await proxied(kg, '/v1/x', { 'x-api-key': parent.body.key }), 429, 'quota_exceeded');
    // A sibling of the parent (minted by the tenant's first key, which has no quota) is not affected.
    const sibling = await self(kg, root, 'POST', '/api-keys', { name: 'sibling', quota: { requestsPerMonth: 5 } });
    expect(await admitted(kg, sibling.body.key)).toBe(true);
  });

  it("a child's session minutes come out of its creator's: one minute, one session at a time", async () => {
    const kg = stores[store]!;
    const { key: root } = await createTenant(kg, { name: `minutes-${store}`, plan: 'metered' });
    const parent = await self(kg, root, 'POST', '/api-keys', { name: 'parent', quota: { sessionMinutesPerMonth: 1 } });
    const a = await self(kg, parent.body.key, 'POST', '/api-keys', { name: 'a' });
    const b = await self(kg, parent.body.key, 'POST', '/api-keys', { name: 'b' });
    const first = await open(kg, a.body.key);
    expect(first.status).toBe(101); // it holds the parent's one minute
    const second = await open(kg, b.body.key);
    console.log(`${store}: a second child's session while the first holds the creator's minute: ${second.status}`);
    expect(second.status).toBe(429);
    expect(second.code).toBe('quota_exceeded');
    second.ws.terminate();
    first.ws.close();
  });

  it('refuses to mint beyond a chain of 8 creators with quotas (409), so no key carries an unbounded chain', async () => {
    const kg = stores[store]!;
    const { key: root } = await createTenant(kg, { name: `depth-${store}`, plan: 'metered' });
    // The tenant's first key holds the plan's maximum: it is the chain's first creator with a quota.
    let creator = (await self(kg, root, 'POST', '/api-keys', { quota: { requestsPerMonth: 1_000 } })).body.key as string;
    // Each child inherits its creator's quota, so each is one more creator with a quota for the next: the key
    // made at depth 7 has a chain of 8, and cannot create.
    for (let depth = 1; depth <= 7; depth++) {
      const child = await self(kg, creator, 'POST', '/api-keys', {});
      expect(child.status, `depth ${depth}`).toBe(201);
      creator = child.body.key;
    }
    expectError(await self(kg, creator, 'POST', '/api-keys', {}), 409, 'key_limit_reached');
  });
});
